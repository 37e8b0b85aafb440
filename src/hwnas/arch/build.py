"""``build_model(arch)`` and the one shape walk that both the builder and the cost models use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import torch
from torch import nn

from hwnas.arch.blocks import ConvBNAct, activation_module, build_block
from hwnas.arch.spec import ArchSpec, Block, HeadSpec, StemSpec

LayerSpec = Union[StemSpec, Block, HeadSpec]


@dataclass(frozen=True)
class LayerShape:
    """One layer of the walk: its name in the built module, its spec and its input/output shape.

    ``name`` is ``"stem"``, ``"blocks.<i>"`` or ``"head"``; the head covers the 1x1 conv, the
    global pool, dropout and the classifier.
    """

    name: str
    spec: LayerSpec
    in_channels: int
    in_size: int
    out_channels: int
    out_size: int


def conv_output_size(size: int, stride: int) -> int:
    """Spatial size after a conv with ``padding = kernel // 2`` (odd kernel):
    ceil(size / stride)."""
    return (size - 1) // stride + 1


def walk(arch: ArchSpec) -> list[LayerShape]:
    """Every layer of ``arch`` in order with its input and output shape (batch excluded)."""
    layers = []
    size = arch.resolution
    out_size = conv_output_size(size, arch.stem.stride)
    layers.append(
        LayerShape("stem", arch.stem, arch.in_channels, size, arch.stem.out_channels, out_size)
    )
    channels, size = arch.stem.out_channels, out_size
    for index, block in enumerate(arch.blocks):
        out_size = conv_output_size(size, block.stride)
        layers.append(
            LayerShape(f"blocks.{index}", block, channels, size, block.out_channels, out_size)
        )
        channels, size = block.out_channels, out_size
    layers.append(LayerShape("head", arch.head, channels, size, arch.head.num_classes, 1))
    return layers


class Head(nn.Module):
    """1x1 conv + BN + activation (without ``spec.conv``: BN + activation) -> global average
    pool -> dropout -> linear classifier."""

    def __init__(self, in_channels: int, spec: HeadSpec) -> None:
        super().__init__()
        self.conv = (ConvBNAct(in_channels, spec.out_channels, 1, activation=spec.activation)
                     if spec.conv else
                     nn.Sequential(nn.BatchNorm2d(in_channels), activation_module(spec.activation)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.dropout) if spec.dropout else nn.Identity()
        self.classifier = nn.Linear(spec.out_channels, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = self.pool(x).flatten(1)
        x = self.dropout(x)
        return self.classifier(x)


class Network(nn.Module):
    """A built :class:`ArchSpec`; ``network.arch`` keeps the spec it was built from."""

    def __init__(self, arch: ArchSpec) -> None:
        super().__init__()
        self.arch = arch
        layers = walk(arch)
        stem = arch.stem
        self.stem = ConvBNAct(
            arch.in_channels, stem.out_channels, stem.kernel_size, stem.stride,
            activation=stem.activation,
        )
        self.blocks = nn.Sequential(
            *(build_block(layer.in_channels, layer.spec) for layer in layers[1:-1])
        )
        self.head = Head(layers[-1].in_channels, arch.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.blocks(x)
        return self.head(x)


def build_layer(layer: LayerShape) -> nn.Module:
    """The module for one layer of the walk alone (what a per-layer LUT measures)."""
    if layer.name == "stem":
        spec = layer.spec
        return ConvBNAct(
            layer.in_channels, spec.out_channels, spec.kernel_size, spec.stride,
            activation=spec.activation,
        )
    if layer.name == "head":
        return Head(layer.in_channels, layer.spec)
    return build_block(layer.in_channels, layer.spec)


def initialise_weights(model: nn.Module) -> None:
    """He (fan-out) init for convs, N(0, 0.01) for the classifier, and BN scale 1 / shift 0,
    except the last BN of every residual block, whose scale starts at 0 so that each block
    starts as the identity (Goyal et al. 2017, "zero-gamma"), which keeps a deep network trainable
    at the start (the 22-block FBNet networks diverged without it; docs/reference.md section 5)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)
    for module in model.modules():
        if getattr(module, "has_residual", False):
            nn.init.zeros_(module.project[1].weight)


def build_model(arch: ArchSpec) -> Network:
    """Build ``arch`` into a randomly initialised :class:`Network`
    (see :func:`initialise_weights`)."""
    model = Network(arch)
    initialise_weights(model)
    return model
