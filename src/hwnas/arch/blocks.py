"""The ``nn.Module`` blocks that an :class:`~hwnas.arch.spec.ArchSpec` is built from.

Each block takes its input channel count plus its spec; the builder (``build.py``) supplies the
input channels from its shape walk. Forward methods read one op per line.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.arch.spec import FBNetBlock, K3SepBlock, MBV2Block, SkipBlock, hidden_channels


def activation_module(name: str) -> nn.Module:
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
        if activation is not None:
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


BLOCK_MODULES: dict[type, type[nn.Module]] = {
    FBNetBlock: FBNetUnit,
    SkipBlock: SkipUnit,
    K3SepBlock: K3SepUnit,
    MBV2Block: InvertedResidual,
}


def build_block(in_channels: int, spec) -> nn.Module:
    return BLOCK_MODULES[type(spec)](in_channels, spec)
