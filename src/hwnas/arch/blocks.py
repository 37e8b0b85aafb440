"""The ``nn.Module`` blocks that an :class:`~hwnas.arch.spec.ArchSpec` is built from.

Each block takes its input channel count plus its spec; the builder (``build.py``) supplies the
input channels from its shape walk. Forward methods read one op per line.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.arch.spec import (
    CELL_EDGE_NODES, FBNetBlock, K3SepBlock, MBV2Block, NB201Cell, ResidualBlock, SkipBlock,
    hidden_channels,
)


def activation_module(name: str) -> nn.Module:
    if name == "none":
        return nn.Identity()
    return nn.ReLU6(inplace=True) if name == "relu6" else nn.ReLU(inplace=True)


class ConvBNAct(nn.Sequential):
    """conv -> BN -> optional activation. ``padding = kernel_size // 2``, no conv bias."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        activation: str | None = "relu",
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride=stride,
                padding=kernel_size // 2, groups=groups, bias=False,
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if activation not in (None, "none"):
            layers.append(activation_module(activation))
        super().__init__(*layers)


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle: view (N, g, C/g, H, W), swap the group axes, flatten."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        x = x.view(batch, self.groups, channels // self.groups, height, width)
        x = x.transpose(1, 2).contiguous()
        return x.view(batch, channels, height, width)


class FBNetUnit(nn.Module):
    """FBNet candidate block (Wu et al. 2019, Table 2; semantics in ``spec.py``).

    1x1 group conv (g) -> BN -> ReLU -> shuffle(g) -> kxk DW (stride s) -> BN -> ReLU ->
    1x1 group conv (g) -> BN, plus the input when s == 1 and Cin == Cout.
    """

    def __init__(self, in_channels: int, spec: FBNetBlock) -> None:
        super().__init__()
        mid = hidden_channels(in_channels, spec.expansion)
        self.expand = (
            ConvBNAct(in_channels, mid, 1, groups=spec.groups)
            if spec.first_pointwise
            else nn.Identity()
        )
        self.shuffle = ChannelShuffle(spec.groups) if spec.groups > 1 else nn.Identity()
        self.depthwise = ConvBNAct(mid, mid, spec.kernel_size, spec.stride, groups=mid)
        self.project = ConvBNAct(mid, spec.out_channels, 1, groups=spec.groups, activation=None)
        self.has_residual = spec.stride == 1 and in_channels == spec.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x)
        out = self.shuffle(out)
        out = self.depthwise(out)
        out = self.project(out)
        return out + x if self.has_residual else out


class SkipUnit(nn.Module):
    """Identity when the shape is kept; otherwise 1x1 conv (stride s) + BN + ReLU."""

    def __init__(self, in_channels: int, spec: SkipBlock) -> None:
        super().__init__()
        keeps_shape = spec.stride == 1 and in_channels == spec.out_channels
        self.projection = (
            nn.Identity()
            if keeps_shape
            else ConvBNAct(in_channels, spec.out_channels, 1, spec.stride)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(x)


class K3SepUnit(nn.Module):
    """Released FBNet-B/C ``k3sep``: 1x1 -> DW3x3 (stride s) -> DW3x3 -> 1x1, ReLU after each
    but the last, residual when the shape is kept (Caffe2 graphs, mobile-vision 4826a08)."""

    def __init__(self, in_channels: int, spec: K3SepBlock) -> None:
        super().__init__()
        mid = hidden_channels(in_channels, spec.expansion)
        self.expand = ConvBNAct(in_channels, mid, 1)
        self.depthwise1 = ConvBNAct(mid, mid, 3, spec.stride, groups=mid)
        self.depthwise2 = ConvBNAct(mid, mid, 3, 1, groups=mid)
        self.project = ConvBNAct(mid, spec.out_channels, 1, activation=None)
        self.has_residual = spec.stride == 1 and in_channels == spec.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x)
        out = self.depthwise1(out)
        out = self.depthwise2(out)
        out = self.project(out)
        return out + x if self.has_residual else out


class InvertedResidual(nn.Module):
    """MobileNetV2 bottleneck (Sandler et al. 2018): [1x1 expand -> BN -> ReLU6] ->
    kxk DW -> BN -> ReLU6 -> 1x1 -> BN, residual when s == 1 and Cin == Cout. The expansion
    conv is absent when the expansion is 1, as in the paper's first bottleneck."""

    def __init__(self, in_channels: int, spec: MBV2Block) -> None:
        super().__init__()
        mid = hidden_channels(in_channels, spec.expansion)
        self.expand = (
            ConvBNAct(in_channels, mid, 1, activation="relu6")
            if mid != in_channels or spec.expansion != 1
            else nn.Identity()
        )
        self.depthwise = ConvBNAct(
            mid, mid, spec.kernel_size, spec.stride, groups=mid, activation="relu6"
        )
        self.project = ConvBNAct(mid, spec.out_channels, 1, activation=None)
        self.has_residual = spec.stride == 1 and in_channels == spec.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x)
        out = self.depthwise(out)
        out = self.project(out)
        return out + x if self.has_residual else out


class ReLUConvBN(nn.Sequential):
    """ReLU -> conv (no bias, ``padding = kernel_size // 2``) -> BN, NB201's ``nor_conv``. The
    ReLU is not in place: a cell's node feeds several edges."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1) -> None:
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                                   padding=kernel_size // 2, bias=False),
                         nn.BatchNorm2d(out_channels))


def cell_operation(name: str, channels: int) -> nn.Module | None:
    """The module of one cell edge (None for ``none``: the edge is absent)."""
    if name == "none":
        return None
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    return ReLUConvBN(channels, channels, 1 if name == "nor_conv_1x1" else 3)


class CellUnit(nn.Module):
    """A NAS-Bench-201 cell: node ``i`` = the sum over edges ``j -> i`` of ``op(node j)``, the
    output is node 3. Every edge's module exists (the parameters NB201 counts); forward runs the
    live ones only (:meth:`NB201Cell.live_edges`), so torch, ONNX and the LUT agree on the work.
    A cell whose output no live edge reaches returns zeros (its input times 0, as NB201's
    ``none`` computes them)."""

    def __init__(self, in_channels: int, spec: NB201Cell) -> None:
        super().__init__()
        modules = {(source, target): cell_operation(op, in_channels)
                   for (source, target), op in zip(CELL_EDGE_NODES, spec.ops)}
        self.edges = nn.ModuleDict({f"{source}_{target}": module
                                    for (source, target), module in modules.items()
                                    if module is not None})
        self.wiring = [(source, target, f"{source}_{target}")
                       for source, target, _ in spec.live_edges()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: dict[int, torch.Tensor] = {0: x}
        for source, target, name in self.wiring:
            out = self.edges[name](nodes[source])
            nodes[target] = out if target not in nodes else nodes[target] + out
        # x * 0, not zeros_like: the exporter folds a constant into a graph without an input
        return nodes[3] if 3 in nodes else x * 0.0


class ResidualUnit(nn.Module):
    """NB201's reduction: ReLU-conv3x3(s)-BN -> ReLU-conv3x3-BN, plus AvgPool2x2 -> conv1x1 for
    stride 2, ReLU-conv1x1-BN when only the width changes, else the identity."""

    def __init__(self, in_channels: int, spec: ResidualBlock) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(in_channels, spec.out_channels, 3, spec.stride)
        self.conv_b = ReLUConvBN(spec.out_channels, spec.out_channels, 3)
        if spec.stride == 2:
            self.shortcut: nn.Module = nn.Sequential(
                nn.AvgPool2d(2, stride=2),
                nn.Conv2d(in_channels, spec.out_channels, 1, bias=False))
        elif in_channels != spec.out_channels:
            self.shortcut = ReLUConvBN(in_channels, spec.out_channels, 1)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


BLOCK_MODULES: dict[type, type[nn.Module]] = {
    FBNetBlock: FBNetUnit,
    SkipBlock: SkipUnit,
    K3SepBlock: K3SepUnit,
    MBV2Block: InvertedResidual,
    NB201Cell: CellUnit,
    ResidualBlock: ResidualUnit,
}


def build_block(in_channels: int, spec) -> nn.Module:
    return BLOCK_MODULES[type(spec)](in_channels, spec)
