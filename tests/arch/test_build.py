"""Every zoo network and random samples of every space build, run, and round-trip; bad specs fail
with a SpecError that names the field and the value, in both the JSON and the string form."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hwnas.arch.build import build_model
from hwnas.arch.spec import ArchSpec, SpecError
from hwnas.arch.zoo import MODEL_NAMES, get_model_spec
from hwnas.spaces import get_space, space_names

from ..helpers import sample_archs

SPACE_NAMES = space_names("dnas")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: these small forward passes gain nothing from more, and on a shared
    machine OpenMP workers spinning for a busy core made them up to 20x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def check_forward(arch: ArchSpec, batch: int = 2) -> None:
    # eval + no_grad + channels_last: about 2x faster on CPU for the 224 px networks.
    model = build_model(arch).eval().to(memory_format=torch.channels_last)
    inputs = torch.randn(batch, arch.in_channels, arch.resolution, arch.resolution)
    with torch.no_grad():
        output = model(inputs.to(memory_format=torch.channels_last))
    assert output.shape == (batch, arch.num_classes)
    assert torch.isfinite(output).all()


def check_round_trips(arch: ArchSpec) -> None:
    assert ArchSpec.from_dict(arch.to_dict()) == arch
    assert ArchSpec.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch
    assert ArchSpec.from_json(arch.to_json()) == arch
    assert ArchSpec.from_string(arch.to_string()) == arch
    assert ArchSpec.from_string(arch.to_string()).to_string() == arch.to_string()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_zoo_network_builds_runs_and_round_trips(name):
    arch = get_model_spec(name)
    check_forward(arch)
    check_round_trips(arch)


@pytest.mark.parametrize("space_name", SPACE_NAMES)
def test_space_samples_build_run_and_round_trip(space_name):
    # 50 samples at the space's real resolution: 224 px for fbnet-imagenet, about 4 s on an idle
    # core (8 s with the machine shared), kept in the default run since it is the real setting.
    space = get_space(space_name)
    for arch in sample_archs(space, 50, seed=2024):
        check_forward(arch)
        check_round_trips(arch)
        assert space.choices_of(arch) == space.choices_of(ArchSpec.from_string(arch.to_string()))


@pytest.mark.parametrize("space_name", SPACE_NAMES)
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**63 - 1))
def test_round_trips_are_identities(space_name, seed):
    arch = sample_archs(get_space(space_name), 1, seed)[0]
    check_round_trips(arch)
    assert ArchSpec.from_dict(arch.to_dict()).to_dict() == arch.to_dict()


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(MODEL_NAMES),
    resolution=st.integers(min_value=1, max_value=512),
    classes=st.integers(min_value=1, max_value=5000),
)
def test_zoo_round_trips_with_any_options(name, resolution, classes):
    options = {"num_classes": classes}
    if not name.startswith("chamnet") and name != "mobilenet_v2_cifar":  # fixed resolutions
        options["resolution"] = resolution
    check_round_trips(get_model_spec(name, **options))


# ---- invalid specs -----------------------------------------------------------------------------
# A valid base: stem 16 -> fbnet block (16 in) -> head, 32 px.
BASE_STRING = "r32:stem_k3_c16_s1:ir_k3_e6_c24_s1:head_c64_n10"


def _base_dict() -> dict:
    return copy.deepcopy(ArchSpec.from_string(BASE_STRING).to_dict())


def _with_block(**changes) -> dict:
    data = _base_dict()
    data["blocks"][0].update(changes)
    return data


def _without(field: str) -> dict:
    data = _base_dict()
    del data["blocks"][0][field]
    return data


# (case id, bad JSON object, words its message must contain, bad string, words of its message):
# every message names the field (or block code / letter) and the bad value.
INVALID_CASES = [
    ("unknown block type",
     _with_block(type="conv"), ["type", "'conv'"],
     "r32:stem_k3_c16_s1:conv_k3_c24_s1:head_c64_n10", ["block code", "'conv'"]),
    ("channels not divisible by groups",
     _with_block(expansion=1, groups=2, out_channels=25), ["out_channels 25", "groups 2"],
     "r32:stem_k3_c16_s1:ir_k3_e1_g2_c25_s1:head_c64_n10", ["out_channels 25", "groups 2"]),
    ("input channels not divisible by groups",
     _with_block(expansion=1, groups=3, out_channels=24), ["input channels 16", "groups 3"],
     "r32:stem_k3_c16_s1:ir_k3_e1_g3_c24_s1:head_c64_n10", ["input channels 16", "groups 3"]),
    ("stride 3",
     _with_block(stride=3), ["'stride'", "got 3"],
     "r32:stem_k3_c16_s1:ir_k3_e6_c24_s3:head_c64_n10", ["'stride'", "got 3"]),
    ("missing field",
     _without("kernel_size"), ["missing field 'kernel_size'"],
     "r32:stem_k3_c16_s1:ir_e6_c24_s1:head_c64_n10", ["missing field 'k'", "ir_e6_c24_s1"]),
    ("extra field",
     _with_block(dilation=2), ["unknown field 'dilation' = 2"],
     "r32:stem_k3_c16_s1:ir_k3_e6_c24_s1_d2:head_c64_n10", ["field 'd'", "s1_d2"]),
    ("negative channels",
     _with_block(out_channels=-8), ["'out_channels'", "-8"],
     "r32:stem_k3_c16_s1:ir_k3_e6_c-8_s1:head_c64_n10", ["'out_channels'", "-8"]),
    ("nan expansion",
     _with_block(expansion=float("nan")), ["'expansion'", "nan"],
     "r32:stem_k3_c16_s1:ir_k3_enan_c24_s1:head_c64_n10", ["'expansion'", "nan"]),
]
CASE_IDS = [case[0] for case in INVALID_CASES]


def test_base_spec_is_valid():
    assert ArchSpec.from_dict(_base_dict()).to_string() == BASE_STRING


@pytest.mark.parametrize("case, data, words, text, text_words", INVALID_CASES, ids=CASE_IDS)
def test_invalid_json_spec_raises_spec_error(case, data, words, text, text_words):
    with pytest.raises(SpecError) as error:
        ArchSpec.from_dict(data)
    message = str(error.value)
    assert all(word in message for word in words), message
    with pytest.raises(SpecError):
        ArchSpec.from_json(json.dumps(data))


@pytest.mark.parametrize("case, data, words, text, text_words", INVALID_CASES, ids=CASE_IDS)
def test_invalid_string_spec_raises_spec_error(case, data, words, text, text_words):
    with pytest.raises(SpecError) as error:
        ArchSpec.from_string(text)
    message = str(error.value)
    assert all(word in message for word in text_words), message
