"""The FBNet layer-wise search space (Wu et al., CVPR 2019, Tables 1 and 2), written as data.

22 searchable layers in 7 stages (widths 16/24/32/64/112/184/352, depths 1/4/4/4/4/4/1), each
choosing one of 9 candidates. Only the first layer of a stage has the stage's stride. Settings:

* ``fbnet-imagenet``: 224 px, stem 16 stride 2, strides 1/2/2/2/1/2/1, head 1984 (B/C) or 1504
  (A), 1000 classes (paper Table 1; HW-NAS-Bench ``hw_nas_bench_api.py``);
* ``fbnet-cifar``: 32 px, stem 16 stride 1, strides 1/1/2/2/1/2/1, head 1504, 10 classes
  (HW-NAS-Bench's CIFAR setting); ``fbnet-cifar100`` the same with 100 classes, which is what the
  real-device tables in ``fbnet_lut_cifar100.json`` price.

An architecture in the space is one candidate index per layer (the HW-NAS-Bench ``arch_index``
order); :meth:`LayerwiseSpace.to_arch` turns it into an :class:`ArchSpec`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from hwnas.arch.build import LayerShape, walk
from hwnas.arch.spec import ArchSpec, Block, FBNetBlock, HeadSpec, SkipBlock, SpecError, StemSpec
from hwnas.spaces.space import (
    ChoiceFunction, Decisions, LayerPriceFunction, contains_arch, format_network, parse_network,
)

FBNET_CANDIDATES = (
    "k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip",
)
FBNET_WIDTHS = (16, 24, 32, 64, 112, 184, 352)
FBNET_DEPTHS = (1, 4, 4, 4, 4, 4, 1)
_CANDIDATE = re.compile(r"^k(\d+)_e(\d+(?:\.\d+)?)(?:_g(\d+))?$")


@dataclass(frozen=True)
class Stage:
    out_channels: int
    depth: int
    stride: int


def candidate_block(name: str, out_channels: int, stride: int, first_pointwise: bool) -> Block:
    """The block for candidate ``name`` ("k5_e6", "k3_e1_g2", "skip") at one layer."""
    if name == "skip":
        return SkipBlock(out_channels=out_channels, stride=stride)
    match = _CANDIDATE.match(name)
    if not match:
        raise SpecError(f"unknown candidate {name!r} (expected 'skip' or like 'k3_e6_g2')")
    kernel, expansion, groups = match.groups()
    expansion_value = float(expansion)
    return FBNetBlock(
        out_channels=out_channels,
        stride=stride,
        kernel_size=int(kernel),
        expansion=expansion_value,
        groups=int(groups or 1),
        first_pointwise=first_pointwise or expansion_value != 1,
    )


@dataclass(frozen=True)
class LayerwiseSpace:
    """A fixed macro-architecture whose every searchable layer picks one candidate block."""

    name: str
    resolution: int
    stem: StemSpec
    stages: tuple[Stage, ...]
    head: HeadSpec
    candidates: tuple[str, ...] = FBNET_CANDIDATES
    e1_first_pointwise: bool = True

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """(out_channels, stride) of each searchable layer."""
        return [
            (stage.out_channels, stage.stride if position == 0 else 1)
            for stage in self.stages
            for position in range(stage.depth)
        ]

    @property
    def num_layers(self) -> int:
        return sum(stage.depth for stage in self.stages)

    @property
    def transition_layers(self) -> tuple[int, ...]:
        """The layers that change the width or stride: no identity path, so each candidate
        writes its output in its own channel coordinates (see ``hwnas.dnas.layerwise``)."""
        widths = [self.stem.out_channels] + [width for width, _ in self.layer_shapes]
        return tuple(layer for layer, (width, stride) in enumerate(self.layer_shapes)
                     if stride != 1 or width != widths[layer])

    @property
    def num_candidates(self) -> int:
        return len(self.candidates)

    @functools.cached_property
    def decisions(self) -> Decisions:
        """One decision per searchable layer, every candidate at each."""
        return Decisions(self.name, tuple(f"layer_{layer}" for layer in range(self.num_layers)),
                         (self.candidates,) * self.num_layers)

    def to_arch(self, choices: Sequence[int]) -> ArchSpec:
        """The architecture with candidate ``choices[l]`` at searchable layer ``l``."""
        choices = self.decisions.checked(choices)
        blocks = tuple(
            candidate_block(self.candidates[choice], out_channels, stride, self.e1_first_pointwise)
            for choice, (out_channels, stride) in zip(choices, self.layer_shapes)
        )
        return ArchSpec(
            resolution=self.resolution, stem=self.stem, blocks=blocks, head=self.head
        )

    def uniform_arch(self, candidate: str) -> ArchSpec:
        """The architecture with ``candidate`` (e.g. "k3_e3") at every searchable layer."""
        if candidate not in self.candidates:
            raise SpecError(
                f"unknown candidate {candidate!r} (known: {', '.join(self.candidates)})"
            )
        return self.to_arch([self.candidates.index(candidate)] * self.num_layers)

    def choices_of(self, arch: ArchSpec) -> tuple[int, ...]:
        """Inverse of :meth:`to_arch`; raises :class:`SpecError` if ``arch`` is not in the space."""
        if arch.resolution != self.resolution or arch.stem != self.stem or arch.head != self.head:
            raise SpecError(
                f"architecture is not in space {self.name!r}: resolution/stem/head differ "
                f"({arch.resolution} px, {arch.stem}, {arch.head})"
            )
        if len(arch.blocks) != self.num_layers:
            raise SpecError(
                f"architecture is not in space {self.name!r}: {len(arch.blocks)} blocks, "
                f"the space has {self.num_layers}"
            )
        choices = []
        shapes = zip(arch.blocks, self.layer_shapes)
        for index, (block, (out_channels, stride)) in enumerate(shapes):
            options = [
                candidate_block(name, out_channels, stride, self.e1_first_pointwise)
                for name in self.candidates
            ]
            if block not in options:
                raise SpecError(
                    f"architecture is not in space {self.name!r}: block {index} {block} is not "
                    f"one of its candidates"
                )
            choices.append(options.index(block))
        return tuple(choices)

    contains = contains_arch
    format = format_network
    parse = parse_network

    def encode(self, matrix: np.ndarray) -> np.ndarray:
        """One-hot, ``[N, layers x candidates]``: position ``l * K + i`` is layer ``l``'s
        candidate ``i``."""
        return self.decisions.one_hot(matrix)

    # ---- layers and their costs -------------------------------------------------------------
    def lut_metadata(self) -> dict[str, Any]:
        return {"name": self.name, "resolution": self.resolution,
                "num_classes": self.head.num_classes, "num_layers": self.num_layers,
                "candidates": list(self.candidates)}

    def uniform_walks(self) -> list[list[LayerShape]]:
        """The shape walk of the all-candidate-``i`` network, for every ``i``. A layer's input
        shape does not depend on earlier choices (every candidate of a layer has its width and
        stride), so these walks hold every (layer, candidate) pair of the space."""
        return [walk(self.to_arch([candidate] * self.num_layers))
                for candidate in range(self.num_candidates)]

    def unique_layer_shapes(self) -> Iterator[LayerShape]:
        for layers in self.uniform_walks():
            yield from layers

    def layer_matrix(self, price: LayerPriceFunction) -> tuple[float, np.ndarray]:
        """``(price(stem) + price(head), matrix[layer, candidate])`` of ``price``."""
        matrix = np.zeros((self.num_layers, self.num_candidates))
        constant = 0.0
        for candidate, layers in enumerate(self.uniform_walks()):
            matrix[:, candidate] = [price(layer) for layer in layers[1:-1]]
            constant = price(layers[0]) + price(layers[-1])
        return constant, matrix

    def layer_sums(self, price: LayerPriceFunction) -> ChoiceFunction:
        """``constant + sum_l matrix[l, C[:, l]]`` of :meth:`layer_matrix`."""
        constant, matrix = self.layer_matrix(price)
        rows = np.arange(self.num_layers)

        def sums(choices: np.ndarray) -> np.ndarray:
            return constant + matrix[rows, np.atleast_2d(choices)].sum(axis=1)

        return sums


def fbnet_space(
    setting: str = "cifar",
    *,
    num_classes: int | None = None,
    head_channels: int | None = None,
    e1_first_pointwise: bool = True,
) -> LayerwiseSpace:
    """The FBNet space in its ``"imagenet"`` or ``"cifar"`` setting (see module docstring)."""
    if setting == "imagenet":
        strides, resolution, stem_stride = (1, 2, 2, 2, 1, 2, 1), 224, 2
        head_default, classes_default = 1984, 1000
    elif setting == "cifar":
        strides, resolution, stem_stride = (1, 1, 2, 2, 1, 2, 1), 32, 1
        head_default, classes_default = 1504, 10
    else:
        raise SpecError(f"unknown FBNet setting {setting!r} (known: imagenet, cifar)")
    classes = classes_default if num_classes is None else num_classes
    stages = tuple(
        Stage(width, depth, stride)
        for width, depth, stride in zip(FBNET_WIDTHS, FBNET_DEPTHS, strides)
    )
    return LayerwiseSpace(
        name=f"fbnet-{setting}" + ("" if classes == classes_default else str(classes)),
        resolution=resolution,
        stem=StemSpec(out_channels=16, stride=stem_stride),
        stages=stages,
        head=HeadSpec(out_channels=head_channels or head_default, num_classes=classes),
        e1_first_pointwise=e1_first_pointwise,
    )
