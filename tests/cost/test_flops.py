"""Analytic MACs/params against forward hooks on the built module, and the exact cost matrices."""

from __future__ import annotations

from collections import defaultdict
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from hwnas.arch.build import LayerShape, build_model, walk
from hwnas.arch.spec import (
    ArchSpec,
    FBNetBlock,
    HeadSpec,
    K3SepBlock,
    MBV2Block,
    SkipBlock,
    StemSpec,
)
from hwnas.arch.zoo import MODEL_NAMES, get_model_spec
from hwnas.cost.base import CostModel
from hwnas.cost.flops import Counts, FlopsCost, ParamsCost, count, layer_counts
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


def _layer_of(module_name: str) -> str:
    """'blocks.3.expand.0' -> 'blocks.3'; 'head.classifier' -> 'head'."""
    parts = module_name.split(".")
    return ".".join(parts[:2]) if parts[0] == "blocks" else parts[0]


def measured_counts(arch: ArchSpec) -> dict[str, Counts]:
    """Per-layer MACs from forward hooks on every conv and linear of the built network
    (conv: Cout*Hout*Wout*Cin/groups*k*k, linear: in*out) and parameters from ``numel``."""
    model = build_model(arch).eval()
    macs: dict[str, int] = defaultdict(int)

    def hook(module: nn.Module, inputs, output: torch.Tensor, layer: str) -> None:
        if isinstance(module, nn.Linear):
            macs[layer] += module.in_features * module.out_features
            return
        _, channels, height, width = output.shape
        kernel_height, kernel_width = module.kernel_size
        per_output = module.in_channels // module.groups * kernel_height * kernel_width
        macs[layer] += channels * height * width * per_output

    handles = [
        module.register_forward_hook(partial(hook, layer=_layer_of(name)))
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        model(torch.zeros(1, arch.in_channels, arch.resolution, arch.resolution))
    for handle in handles:
        handle.remove()
    params: dict[str, int] = defaultdict(int)
    for name, parameter in model.named_parameters():
        params[_layer_of(name)] += parameter.numel()
    names = [layer.name for layer in walk(arch)]
    return {name: Counts(macs[name], params[name]) for name in names}


def _samples(space_name: str, number: int, seed: int) -> list[ArchSpec]:
    return sample_archs(get_space(space_name), number, seed)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_zoo_counts_equal_hooks_and_numel(name):
    arch = get_model_spec(name)
    analytic = count(arch)
    measured = measured_counts(arch)
    assert dict(analytic.per_layer) == measured
    assert analytic.macs == sum(counts.macs for counts in measured.values())
    assert analytic.params == sum(p.numel() for p in build_model(arch).parameters())


@pytest.mark.parametrize("space_name", ["fbnet-cifar", "fbnet-imagenet"])
def test_space_sample_counts_equal_hooks(space_name):
    for arch in _samples(space_name, 20, seed=7):
        analytic = count(arch)
        assert dict(analytic.per_layer) == measured_counts(arch), arch.to_string()
        assert analytic.params == sum(p.numel() for p in build_model(arch).parameters())


def test_layer_counts_by_hand():
    """Each formula on a small case worked out by hand (32 px, stride 1 unless stated)."""
    stem = StemSpec(out_channels=16, stride=1, kernel_size=3)
    # 16 * 32 * 32 * 3 * 9 MACs; 16 * 3 * 9 weights + 2 * 16 BN.
    assert layer_counts(LayerShape("stem", stem, 3, 32, 16, 32)) == Counts(442_368, 464)
    grouped = FBNetBlock(out_channels=24, stride=2, kernel_size=5, expansion=1, groups=2)
    # 1x1 g2 16->16 at 32 px: 16*8*1024 = 131072, 128 + 32 params;
    # DW5 16 s2 -> 16 px: 16*25*256 = 102400, 400 + 32; 1x1 g2 16->24 at 16 px: 24*8*256 = 49152,
    # 192 + 48.
    assert layer_counts(LayerShape("blocks.0", grouped, 16, 32, 24, 16)) == Counts(
        131_072 + 102_400 + 49_152, 160 + 432 + 240
    )
    no_pointwise = FBNetBlock(out_channels=16, stride=1, kernel_size=3, expansion=1,
                              first_pointwise=False)
    # DW3 16: 16*9*1024 = 147456, 144 + 32; 1x1 16->16: 262144, 256 + 32.
    assert layer_counts(LayerShape("blocks.0", no_pointwise, 16, 32, 16, 32)) == Counts(
        147_456 + 262_144, 176 + 288
    )
    skip = SkipBlock(out_channels=16, stride=1)
    assert layer_counts(LayerShape("blocks.0", skip, 16, 32, 16, 32)) == Counts(0, 0)
    projection = SkipBlock(out_channels=32, stride=2)
    # 1x1 s2 16->32 at 16 px: 32*16*256 = 131072, 512 + 64.
    assert layer_counts(LayerShape("blocks.0", projection, 16, 32, 32, 16)) == Counts(131_072, 576)
    k3sep = K3SepBlock(out_channels=8, stride=1, expansion=2)
    # 1x1 4->8: 8*4*1024 = 32768, 32+16; two DW3 8: 8*9*1024 = 73728 each, 72+16 each;
    # 1x1 8->8: 65536, 64+16.
    assert layer_counts(LayerShape("blocks.0", k3sep, 4, 32, 8, 32)) == Counts(
        32_768 + 2 * 73_728 + 65_536, 48 + 2 * 88 + 80
    )
    inverted = MBV2Block(out_channels=8, stride=1, kernel_size=3, expansion=1)
    # No expansion conv at e=1: DW3 4: 4*9*1024 = 36864, 36+8; 1x1 4->8: 32768, 32+16.
    assert layer_counts(LayerShape("blocks.0", inverted, 4, 32, 8, 32)) == Counts(
        36_864 + 32_768, 44 + 48
    )
    head = HeadSpec(out_channels=64, num_classes=10)
    # 1x1 32->64 at 4 px: 64*32*16 = 32768, 2048+128; linear 64*10 = 640, 640 + 10 bias.
    assert layer_counts(LayerShape("head", head, 32, 4, 10, 1)) == Counts(32_768 + 640, 2176 + 650)


def test_cost_models_report_millions():
    arch = get_model_spec("mobilenet_v2")
    flops, params = FlopsCost(), ParamsCost()
    assert (flops.name, flops.unit) == ("mflops", "MFLOPs")
    assert (params.name, params.unit) == ("mparams", "M")
    assert flops.cost(arch) == count(arch).macs / 1e6
    assert params.cost(arch) == pytest.approx(3.504872)
    assert list(flops.costs([arch, arch])) == [flops.cost(arch)] * 2


@pytest.mark.parametrize("space_name", SPACE_NAMES)
@pytest.mark.parametrize("model", [FlopsCost(), ParamsCost()], ids=["flops", "params"])
def test_layer_cost_matrix_is_exact(space_name, model):
    space = get_space(space_name)
    matrix = model.layer_cost_matrix(space)
    assert matrix.matrix.shape == (space.num_layers, space.num_candidates)
    # The generic marginal-cost matrix of the base class is exact for additive models too, so
    # both must give the same totals.
    generic = CostModel.layer_cost_matrix(model, space)
    for row in space.decisions.sample(20, np.random.default_rng(3)):
        choices = tuple(row)
        expected = model.cost(space.to_arch(choices))
        assert matrix.total(choices) == pytest.approx(expected, rel=1e-12)
        assert generic.total(choices) == pytest.approx(expected, rel=1e-9)
        one_hot = np.eye(space.num_candidates)[list(choices)]
        assert matrix.expected(one_hot) == pytest.approx(expected, rel=1e-12)


def test_identity_skip_costs_nothing_in_the_matrix():
    space = get_space("fbnet-cifar")
    skip = space.candidates.index("skip")
    macs = FlopsCost().layer_cost_matrix(space).matrix
    shapes = space.layer_shapes
    previous = [space.stem.out_channels] + [channels for channels, _ in shapes[:-1]]
    for layer, ((channels, stride), in_channels) in enumerate(zip(shapes, previous)):
        keeps_shape = stride == 1 and channels == in_channels
        assert (macs[layer, skip] == 0) == keeps_shape
