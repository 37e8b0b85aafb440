"""Operator keys: the same shape walk as the builder, checked against forward hooks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwnas.arch.blocks import FBNetUnit, InvertedResidual, K3SepUnit, SkipUnit
from hwnas.arch.build import Head, build_layer, build_model
from hwnas.arch.spec import ArchSpec, HeadSpec, K3SepBlock, MBV2Block, SkipBlock, StemSpec
from hwnas.cost.opkey import OpKey, OpKeyError, op_keys, space_keys
from hwnas.spaces import get_space

from ..helpers import sample_archs

MODULE_TYPES = {"fbnet": FBNetUnit, "skip": SkipUnit, "k3sep": K3SepUnit, "mbv2": InvertedResidual}


def mixed_arch() -> ArchSpec:
    """Every block type, a shape-keeping skip (identity) and a projecting skip."""
    space = get_space("fbnet-cifar")
    base = sample_archs(space, 1, seed=3)[0]
    extra = (SkipBlock(352, 1), MBV2Block(48, 2, 5, 6), K3SepBlock(48, 1, 3), SkipBlock(64, 1))
    return ArchSpec(resolution=40, stem=StemSpec(16, 2), blocks=base.blocks + extra,
                    head=HeadSpec(out_channels=256, num_classes=7))


def hooked_layers(arch: ArchSpec) -> list[tuple[torch.nn.Module, tuple, tuple]]:
    model = build_model(arch).eval()
    seen: list[tuple[torch.nn.Module, tuple, tuple]] = []
    layers = [model.stem, *model.blocks, model.head]
    handles = [layer.register_forward_hook(
        lambda module, inputs, output: seen.append((module, tuple(inputs[0].shape),
                                                    tuple(output.shape))))
        for layer in layers]
    with torch.no_grad():
        model(torch.zeros(2, arch.in_channels, arch.resolution, arch.resolution))
    for handle in handles:
        handle.remove()
    return seen


def first_conv(module: torch.nn.Module, depthwise: bool) -> torch.nn.Conv2d:
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    if depthwise:
        convs = [c for c in convs if c.groups == c.in_channels and c.in_channels > 1]
    return convs[0]


def test_keys_match_forward_hooks():
    arch = mixed_arch()
    keys = op_keys(arch)
    seen = hooked_layers(arch)
    assert len(keys) == len(seen) == len(arch.blocks) + 2
    for key, (module, input_shape, output_shape) in zip(keys, seen):
        params = dict(key.params)
        assert key.input_shape == input_shape[1:]
        shape = key.layer_shape()
        if key.kind == "head":
            assert isinstance(module, Head) and output_shape[1:] == (params["num_classes"],)
            continue
        assert output_shape[1:] == (shape.out_channels, shape.out_size, shape.out_size)
        if key.kind == "block":
            assert isinstance(module, MODULE_TYPES[params["type"]])
        convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
        if not convs:  # a shape-keeping skip is an identity, yet still a key
            assert params["type"] == "skip" and params["stride"] == 1
            assert key.input_shape[0] == params["out_channels"]
            continue
        assert max(c.stride[0] for c in convs) == params["stride"]
        if params.get("type") == "fbnet":
            assert convs[-1].groups == params["groups"]
            assert any(c.kernel_size[0] == params["kernel_size"] for c in convs)


def test_identity_skip_is_an_explicit_key():
    keys = op_keys(mixed_arch())
    identities = [k for k in keys if dict(k.params).get("type") == "skip"
                  and dict(k.params)["stride"] == 1
                  and k.input_shape[0] == dict(k.params)["out_channels"]]
    assert identities


def test_keys_round_trip_through_json_and_hash_by_value():
    for key in op_keys(mixed_arch()):
        again = OpKey.from_dict(json.loads(json.dumps(key.to_dict())))
        assert again == key and hash(again) == hash(key) and again.id == key.id


def test_layer_shape_of_key_builds_the_same_module_type():
    for key, (module, _, _) in zip(op_keys(mixed_arch()), hooked_layers(mixed_arch())):
        assert type(build_layer(key.layer_shape())) is type(module)


def test_space_keys_cover_every_random_arch():
    space = get_space("fbnet-cifar")
    keys = set(space_keys(space))
    assert len(keys) == len(space_keys(space)) == 110  # 12 layer shapes x 9 + stem + head
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert set(op_keys(sample_archs(space, 1, int(rng.integers(1000)))[0])) <= keys


def test_keys_differ_between_spaces():
    cifar = set(space_keys(get_space("fbnet-cifar")))
    assert not cifar & set(space_keys(get_space("fbnet-imagenet")))
    assert cifar - set(space_keys(get_space("fbnet-cifar100"))) != set()


@pytest.mark.parametrize("data", [
    None, {"kind": "block"},
    {"kind": "neck", "params": {}, "input_shape": [1, 2, 2], "dtype": "float32"},
    {"kind": "block", "params": {"type": "skip", "out_channels": 8, "stride": 1},
     "input_shape": [8, 4], "dtype": "float32"},
    {"kind": "block", "params": {"type": "skip", "out_channels": 8, "stride": 3},
     "input_shape": [8, 4, 4], "dtype": "float32"},
    {"kind": "block", "params": {"type": "skip", "out_channels": 8, "stride": 1},
     "input_shape": [8, 4, 4], "dtype": "float16"},
    {"kind": "block", "params": {"type": "skip", "out_channels": [8], "stride": 1},
     "input_shape": [8, 4, 4], "dtype": "float32"},
])
def test_malformed_keys_are_refused(data):
    with pytest.raises(OpKeyError):
        OpKey.from_dict(data)
