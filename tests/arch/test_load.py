"""load_arch: zoo names, arch strings and JSON files, and an error naming each bad input."""

from __future__ import annotations

import json

import pytest

from hwnas.arch.load import load_arch
from hwnas.arch.spec import ArchSpec
from hwnas.arch.zoo import MODEL_NAMES, get_model_spec
from hwnas.errors import HwnasError

# A small valid network (CIFAR-sized) in the compact string form of arch/codec.py.
SMALL = "r32:stem_k3_c16_s1:ir_k3_e1_c16_s1:ir_k5_e6_g2_c24_s2:skip_c24_s1:head_c64_n10"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_zoo_name_gives_the_zoo_spec(name):
    assert load_arch(name) == get_model_spec(name)


def test_zoo_options_reach_the_zoo():
    arch = load_arch("mobilenet_v2", width=0.5, resolution=160, num_classes=10)
    assert arch == get_model_spec(
        "mobilenet_v2", width_multiplier=0.5, resolution=160, num_classes=10
    )
    assert (arch.resolution, arch.num_classes) == (160, 10)


def test_string_round_trips_and_takes_overrides():
    arch = load_arch(SMALL)
    assert arch.to_string() == SMALL
    changed = load_arch(f"  {SMALL} ", resolution=64, num_classes=100)
    assert (changed.resolution, changed.num_classes) == (64, 100)
    assert changed.blocks == arch.blocks and changed.stem == arch.stem


@pytest.mark.parametrize("name", ["fbnet_c", "mobilenet_v2"])
def test_full_size_strings_longer_than_a_file_name(name):
    text = get_model_spec(name).to_string()
    assert len(text) > 255  # the longest file name Linux allows
    assert load_arch(text) == get_model_spec(name)


def test_spec_file_and_show_json_file(tmp_path):
    arch = get_model_spec("fbnet_a")
    plain = tmp_path / "fbnet_a.json"
    plain.write_text(arch.to_json(indent=2))
    assert load_arch(str(plain)) == arch
    # What `hwnas arch show --json` prints: the spec under "arch" beside other keys.
    wrapped = tmp_path / "shown.json"
    wrapped.write_text(json.dumps({"arch": arch.to_dict(), "mflops": 1.0}))
    assert load_arch(str(wrapped)) == arch
    assert load_arch(str(plain), num_classes=7).num_classes == 7


@pytest.mark.parametrize(
    ("text", "options", "named"),
    [
        ("fbnet_z", {}, "'fbnet_z'"),
        ("", {}, "empty"),
        ("r32:stem_k3_c16_s1:ir_k3_e7x_c16_s1:head_c64_n10", {}, "'e7x'"),
        ("r32:foo", {}, "r32:foo"),
        ("r32:stem_k3_c16_s1:ir_k4_e1_c16_s1:head_c64_n10", {}, "kernel_size"),
        (SMALL, {"width": 0.5}, "--width"),
        ("chamnet_a", {"resolution": 160}, "--resolution"),
        ("fbnet_c", {"width": 0.5}, "--width"),
        ("mobilenet_v2", {"width": -1.0}, "-1"),
        (SMALL, {"resolution": 0}, "resolution"),
    ],
)
def test_bad_text_or_option_names_it(text, options, named):
    with pytest.raises(HwnasError) as caught:
        load_arch(text, **options)
    assert named in str(caught.value)


def test_missing_unreadable_and_malformed_files(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(HwnasError, match="not found") as caught:
        load_arch(str(missing))
    assert str(missing) in str(caught.value)

    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    with pytest.raises(HwnasError, match="not valid JSON") as caught:
        load_arch(str(bad_json))
    assert str(bad_json) in str(caught.value)

    bad_spec = tmp_path / "spec.json"
    data = get_model_spec("fbnet_c").to_dict()
    data["blocks"][3]["stride"] = 3
    bad_spec.write_text(json.dumps(data))
    with pytest.raises(HwnasError, match="stride") as caught:
        load_arch(str(bad_spec))
    assert str(bad_spec) in str(caught.value) and "got 3" in str(caught.value)

    with pytest.raises(HwnasError, match="directory"):
        load_arch(str(tmp_path))


def test_returns_arch_specs():
    assert all(isinstance(load_arch(text), ArchSpec) for text in ("fbnet_c", SMALL))
