"""Analytic multiply-adds and parameter counts, from the spec's shape walk alone (no modules).

Conventions (those of the published FBNet / ChamNet / MobileNetV2 figures, where "FLOPs" means
multiply-adds of the conv and fully connected layers):

* a conv with ``C_in`` inputs, ``C_out`` outputs, ``g`` groups, a ``k x k`` kernel and an output of
  ``H_out x W_out`` costs ``C_out * H_out * W_out * (C_in / g) * k * k`` MACs;
* a linear layer ``in -> out`` costs ``in * out`` MACs;
* BN, activations, residual adds, channel shuffles and pooling are free.

NAS-Bench-201 counts the same way (its API's FLOPs are conv and linear multiply-adds, plus the
classifier's bias adds): the all-``nor_conv_3x3`` CIFAR-10 network has 220.11969 MFLOPs and
1.531546 M parameters there, a cell without convs 7.78305 MFLOPs and 0.073306 M (NAS-Bench-201
API cost info, as quoted in EvoXBench's and MO-HPOBench's NB201 bounds); tests/cost/test_flops.py
checks these.

Parameters are *all* learnable parameters of the built module: conv weights (no conv biases,
every conv is followed by BN), the two BN affine vectors per BN, and the classifier's weight and
bias, so :func:`count` equals ``sum(p.numel() for p in build_model(arch).parameters())``.
The per-block formulas below mirror ``arch/blocks.py`` module for module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hwnas.arch.build import LayerShape, walk
from hwnas.arch.spec import (
    ArchSpec,
    FBNetBlock,
    HeadSpec,
    K3SepBlock,
    MBV2Block,
    NB201Cell,
    ResidualBlock,
    SkipBlock,
    SpecError,
    StemSpec,
    hidden_channels,
)
from hwnas.cost.base import CostModel, LayerPrice


@dataclass(frozen=True)
class Counts:
    """Multiply-adds and learnable parameters of one layer (or a sum of layers)."""

    macs: int
    params: int

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.macs + other.macs, self.params + other.params)


ZERO = Counts(0, 0)


@dataclass(frozen=True)
class ArchCounts:
    """Totals of a whole network and the counts of each layer of its walk, in order."""

    macs: int
    params: int
    per_layer: list[tuple[str, Counts]]


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, out_size: int,
            groups: int = 1) -> Counts:
    """A bias-free conv followed by BN: ``C_out H W (C_in/g) k^2`` MACs; weights + 2 C_out."""
    weights = out_channels * (in_channels // groups) * kernel_size * kernel_size
    return Counts(macs=weights * out_size * out_size, params=weights + 2 * out_channels)


def _fbnet_counts(layer: LayerShape, block: FBNetBlock) -> Counts:
    mid = hidden_channels(layer.in_channels, block.expansion)
    counts = ZERO
    if block.first_pointwise:
        counts += conv_bn(layer.in_channels, mid, 1, layer.in_size, block.groups)
    counts += conv_bn(mid, mid, block.kernel_size, layer.out_size, groups=mid)
    return counts + conv_bn(mid, layer.out_channels, 1, layer.out_size, block.groups)


def _skip_counts(layer: LayerShape, block: SkipBlock) -> Counts:
    if block.stride == 1 and layer.in_channels == layer.out_channels:
        return ZERO  # identity
    return conv_bn(layer.in_channels, layer.out_channels, 1, layer.out_size)


def _k3sep_counts(layer: LayerShape, block: K3SepBlock) -> Counts:
    mid = hidden_channels(layer.in_channels, block.expansion)
    return (
        conv_bn(layer.in_channels, mid, 1, layer.in_size)
        + conv_bn(mid, mid, 3, layer.out_size, groups=mid)
        + conv_bn(mid, mid, 3, layer.out_size, groups=mid)
        + conv_bn(mid, layer.out_channels, 1, layer.out_size)
    )


def _mbv2_counts(layer: LayerShape, block: MBV2Block) -> Counts:
    mid = hidden_channels(layer.in_channels, block.expansion)
    counts = ZERO
    # Same condition as blocks.InvertedResidual: no expansion conv for expansion 1.
    if mid != layer.in_channels or block.expansion != 1:
        counts += conv_bn(layer.in_channels, mid, 1, layer.in_size)
    counts += conv_bn(mid, mid, block.kernel_size, layer.out_size, groups=mid)
    return counts + conv_bn(mid, layer.out_channels, 1, layer.out_size)


def _cell_counts(layer: LayerShape, block: NB201Cell) -> Counts:
    """Every edge's conv, live or not, as NAS-Bench-201 counts (its published FLOPs and params
    include edges that never reach the output)."""
    kernels = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}  # the other operations are free
    counts = ZERO
    for op in block.ops:
        if op in kernels:
            counts += conv_bn(layer.in_channels, layer.in_channels, kernels[op], layer.out_size)
    return counts


def _residual_counts(layer: LayerShape, block: ResidualBlock) -> Counts:
    counts = (conv_bn(layer.in_channels, layer.out_channels, 3, layer.out_size)
              + conv_bn(layer.out_channels, layer.out_channels, 3, layer.out_size))
    if block.stride == 2:  # average pool, then a 1x1 conv without BN
        weights = layer.in_channels * layer.out_channels
        return counts + Counts(weights * layer.out_size * layer.out_size, weights)
    if layer.in_channels != layer.out_channels:
        return counts + conv_bn(layer.in_channels, layer.out_channels, 1, layer.out_size)
    return counts


def _head_counts(layer: LayerShape, head: HeadSpec) -> Counts:
    conv = (conv_bn(layer.in_channels, head.out_channels, 1, layer.in_size) if head.conv
            else Counts(0, 2 * layer.in_channels))  # BN alone
    classifier = Counts(
        macs=head.out_channels * head.num_classes,
        params=head.out_channels * head.num_classes + head.num_classes,
    )
    return conv + classifier


def layer_counts(layer: LayerShape) -> Counts:
    """MACs and parameters of one layer of :func:`~hwnas.arch.build.walk`."""
    spec = layer.spec
    if isinstance(spec, StemSpec):
        return conv_bn(layer.in_channels, spec.out_channels, spec.kernel_size, layer.out_size)
    if isinstance(spec, HeadSpec):
        return _head_counts(layer, spec)
    if isinstance(spec, FBNetBlock):
        return _fbnet_counts(layer, spec)
    if isinstance(spec, SkipBlock):
        return _skip_counts(layer, spec)
    if isinstance(spec, K3SepBlock):
        return _k3sep_counts(layer, spec)
    if isinstance(spec, MBV2Block):
        return _mbv2_counts(layer, spec)
    if isinstance(spec, NB201Cell):
        return _cell_counts(layer, spec)
    if isinstance(spec, ResidualBlock):
        return _residual_counts(layer, spec)
    raise SpecError(f"layer {layer.name}: cannot count a {type(spec).__name__}")


def count(arch: ArchSpec) -> ArchCounts:
    """MACs and parameters of ``arch``, in total and per layer of its walk."""
    per_layer = [(layer.name, layer_counts(layer)) for layer in walk(arch)]
    return ArchCounts(
        macs=sum(counts.macs for _, counts in per_layer),
        params=sum(counts.params for _, counts in per_layer),
        per_layer=per_layer,
    )


class CountCost(CostModel):
    """A count of :func:`count` in millions; additive over the walk's layers."""

    #: the :class:`Counts` field counted
    field = "macs"

    def cost(self, arch: ArchSpec) -> float:
        return getattr(count(arch), self.field) / 1e6

    def layer_price(self, space: Any) -> LayerPrice:
        return LayerPrice(lambda layer: getattr(layer_counts(layer), self.field) / 1e6)


class FlopsCost(CountCost):
    """Multiply-adds in millions ("MFLOPs" in the FBNet/ChamNet papers' sense)."""

    name, unit, field = "mflops", "MFLOPs", "macs"


class ParamsCost(CountCost):
    """Learnable parameters in millions (BN affine and classifier bias included)."""

    name, unit, field = "mparams", "M", "params"
