"""The DMaskingNAS (FBNetV2, Wan et al. CVPR 2020) search space over the FBNet CIFAR macro-arch.

FBNetV2 searches the number of channels and the input resolution on top of FBNet's per-layer
block choice (docs/reference.md section 3). ``dmasking-cifar`` keeps FBNet's CIFAR stages
(widths 16/24/32/64/112/184/352, depths 1/4/4/4/4/4/1, strides 1/1/2/2/1/2/1, stem 16 stride 1,
head 1504, 10 classes) and searches three kinds of *decisions*:

``resolution``  the input resolution, one of {24, 28, 32} px (the 32 px CIFAR image resized);
``width_s``     the output width of stage ``s``, one of {0.5, 0.75, 1.0} x the FBNet width
                rounded to a multiple of 8 (duplicates removed, e.g. stage 1: {8, 16}); every
                layer of a stage shares it, as the residual adds inside a stage require;
``layer_l``     the block of layer ``l``: {k3_e1, k3_e3, k3_e6, k5_e3, k5_e6} plus ``skip`` on the
                layers that are not the first of their stage (depth search).

Why these candidates and not FBNet's 9: the grouped candidates (``*_g2``) cannot share weights
under channel masks (a 2-group conv over the first ``c`` channels splits them differently than
over all ``Cmax``), and a skip as the first layer of a stage is a 1x1 projection for some width
choices and an identity for others, which one masked max-width block cannot be. ``k5_e1`` is
dropped to keep the latency table small. The stem and head widths are fixed.

An architecture is a tuple of option indices, one per decision in the order of
``DMaskingSpace.decisions.names`` (resolution, width_1..7, layer_0..21);
:meth:`DMaskingSpace.to_arch` turns it into a
normal :class:`ArchSpec` at the chosen resolution. A layer's input width depends on the
previous stage's choice, so the space lists its distinct layers itself
(:meth:`DMaskingSpace.unique_layer_shapes`, used by ``hwnas lut build``). ``dmasking-cifar-sparse``
is the same space whose latency table holds only the narrowest and widest option of every stage;
:mod:`hwnas.dnas.dmasking_cost` interpolates the missing widths linearly.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterator, Sequence

import numpy as np

from hwnas.arch.build import LayerShape, conv_output_size, walk
from hwnas.arch.spec import ArchSpec, HeadSpec, SpecError, StemSpec
from hwnas.spaces.fbnet import FBNET_DEPTHS, FBNET_WIDTHS, candidate_block
from hwnas.spaces.space import (
    ChoiceFunction, Decisions, LayerPriceFunction, contains_arch, format_network, parse_network,
    walk_sums,
)

CIFAR_STRIDES = (1, 1, 2, 2, 1, 2, 1)  # FBNet / HW-NAS-Bench CIFAR setting
WIDTH_FACTORS = (0.5, 0.75, 1.0)
RESOLUTIONS = (24, 28, 32)
BLOCK_CANDIDATES = ("k3_e1", "k3_e3", "k3_e6", "k5_e3", "k5_e6")
WIDTH_DIVISOR = 8


def scaled_widths(width: int, factors: Sequence[float], divisor: int = WIDTH_DIVISOR
                  ) -> tuple[int, ...]:
    """``factor * width`` rounded half up to a multiple of ``divisor`` (at least ``divisor``),
    ascending and without duplicates: 112 x (0.5, 0.75, 1) -> (56, 88, 112)."""
    rounded = {max(divisor, int(math.floor(factor * width / divisor + 0.5)) * divisor)
               for factor in factors}
    return tuple(sorted(rounded))


@dataclass(frozen=True)
class LayerPlan:
    """One searchable layer: its stage, whether it opens the stage, stride and candidates."""

    index: int
    stage: int  # 0-based
    first: bool
    stride: int
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class DMaskingSpace:
    """Resolution x stage widths x per-layer blocks over a fixed FBNet macro-architecture."""

    name: str
    resolutions: tuple[int, ...]
    stem: StemSpec
    stage_widths: tuple[tuple[int, ...], ...]  # width options of each stage, ascending
    depths: tuple[int, ...]
    strides: tuple[int, ...]
    head: HeadSpec
    block_candidates: tuple[str, ...] = BLOCK_CANDIDATES
    sparse_table: bool = False  # the LUT holds only each stage's narrowest and widest option

    def __post_init__(self) -> None:
        if not (len(self.stage_widths) == len(self.depths) == len(self.strides)):
            raise SpecError(f"space {self.name!r}: stage widths, depths and strides differ in "
                            f"length")
        for widths in (self.resolutions, *self.stage_widths):
            if not widths or list(widths) != sorted(set(widths)):
                raise SpecError(f"space {self.name!r}: options must be ascending and distinct, "
                                f"got {widths!r}")
        if "skip" in self.block_candidates:
            raise SpecError(f"space {self.name!r}: 'skip' is added to non-first layers itself")

    # ---- layers and decisions ---------------------------------------------------------------
    @cached_property
    def layers(self) -> tuple[LayerPlan, ...]:
        plans = []
        for stage, (depth, stride) in enumerate(zip(self.depths, self.strides)):
            for position in range(depth):
                candidates = self.block_candidates + (() if position == 0 else ("skip",))
                plans.append(LayerPlan(len(plans), stage, position == 0,
                                       stride if position == 0 else 1, candidates))
        return tuple(plans)

    @property
    def num_layers(self) -> int:
        return sum(self.depths)

    @property
    def num_stages(self) -> int:
        return len(self.depths)

    @property
    def resolution(self) -> int:
        """The largest resolution: the supernet's input size and the LUT's nominal resolution
        (the table holds keys for every resolution of the space)."""
        return self.resolutions[-1]

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @cached_property
    def decisions(self) -> Decisions:
        """``resolution, width_1..7, layer_0..21`` with their option values."""
        names = (("resolution",) + tuple(f"width_{s + 1}" for s in range(self.num_stages))
                 + tuple(f"layer_{layer.index}" for layer in self.layers))
        options = ((self.resolutions,) + self.stage_widths
                   + tuple(layer.candidates for layer in self.layers))
        return Decisions(self.name, names, options)

    @property
    def first_layer_decision(self) -> int:
        """The row of ``layer_0`` among the decisions (after the resolution and the widths)."""
        return 1 + self.num_stages

    def input_widths(self, layer: LayerPlan) -> tuple[int, ...]:
        """The width options entering ``layer``: the previous stage's (the stem's for layer 0)."""
        if layer.stage == 0:
            return self.stem_widths() if layer.first else self.stage_widths[0]
        return self.stage_widths[layer.stage - (1 if layer.first else 0)]

    def stem_widths(self) -> tuple[int, ...]:
        return (self.stem.out_channels,)

    # ---- choices <-> architectures ----------------------------------------------------------
    def to_arch(self, choices: Sequence[int]) -> ArchSpec:
        """The plain network of ``choices`` (resolution, stage widths, layer blocks)."""
        choices = self.decisions.checked(choices)
        resolution = self.resolutions[choices[0]]
        widths = [self.stage_widths[s][choices[1 + s]] for s in range(self.num_stages)]
        blocks = tuple(
            candidate_block(layer.candidates[choices[self.first_layer_decision + layer.index]],
                            widths[layer.stage], layer.stride, True)
            for layer in self.layers
        )
        return ArchSpec(resolution=resolution, stem=self.stem, blocks=blocks, head=self.head)

    def choices_of(self, arch: ArchSpec) -> tuple[int, ...]:
        """Inverse of :meth:`to_arch`; raises :class:`SpecError` if ``arch`` is not in the space."""
        def fail(reason: str) -> SpecError:
            return SpecError(f"architecture is not in space {self.name!r}: {reason}")

        if arch.stem != self.stem or arch.head != self.head or arch.in_channels != 3:
            raise fail("stem/head differ")
        if arch.resolution not in self.resolutions:
            raise fail(f"resolution {arch.resolution} is not one of {self.resolutions}")
        if len(arch.blocks) != self.num_layers:
            raise fail(f"{len(arch.blocks)} blocks, the space has {self.num_layers}")
        widths = []
        for stage, options in enumerate(self.stage_widths):
            width = arch.blocks[sum(self.depths[:stage])].out_channels
            if width not in options:
                raise fail(f"stage {stage + 1} width {width} is not one of {options}")
            widths.append(options.index(width))
        choices = [self.resolutions.index(arch.resolution), *widths]
        for layer, block in zip(self.layers, arch.blocks):
            width = self.stage_widths[layer.stage][widths[layer.stage]]
            options = [candidate_block(name, width, layer.stride, True)
                       for name in layer.candidates]
            if block not in options:
                raise fail(f"block {layer.index} {block} is not one of its candidates")
            choices.append(options.index(block))
        return tuple(choices)

    contains = contains_arch
    format = format_network
    parse = parse_network

    def encode(self, matrix: np.ndarray) -> np.ndarray:
        """One indicator block per decision."""
        return self.decisions.one_hot(matrix)

    def layer_sums(self, price: LayerPriceFunction) -> ChoiceFunction:
        """Per network (a layer's input width depends on the previous stage's choice)."""
        return walk_sums(self, price)

    def largest_choices(self) -> tuple[int, ...]:
        """Largest resolution and widths, the first (k3_e1) block everywhere."""
        return (len(self.resolutions) - 1,
                *(len(widths) - 1 for widths in self.stage_widths), *([0] * self.num_layers))

    # ---- latency tables ---------------------------------------------------------------------
    def lut_metadata(self) -> dict[str, Any]:
        """What a latency table stores about this space (see :mod:`hwnas.cost.lut`)."""
        return {"name": self.name, "resolution": self.resolution,
                "resolutions": list(self.resolutions), "num_classes": self.num_classes,
                "num_layers": self.num_layers, "candidates": list(self.decisions.names)}

    def table_widths(self, widths: tuple[int, ...]) -> tuple[int, ...]:
        """The width options a latency table of this space measures (all, or the extremes)."""
        return (widths[0], widths[-1]) if self.sparse_table and len(widths) > 2 else widths

    def layer_shape(self, resolution: int, layer: LayerPlan, candidate: str, in_width: int,
                    out_width: int) -> LayerShape:
        """The walk entry of ``layer`` with these widths at input ``resolution``."""
        size = self.layer_input_size(resolution, layer.index)
        block = candidate_block(candidate, out_width, layer.stride, True)
        return LayerShape(f"blocks.{layer.index}", block, in_width, size, out_width,
                          conv_output_size(size, layer.stride))

    def layer_input_size(self, resolution: int, index: int) -> int:
        """Spatial size entering searchable layer ``index`` (``num_layers``: the head)."""
        size = conv_output_size(resolution, self.stem.stride)
        for layer in self.layers[:index]:
            size = conv_output_size(size, layer.stride)
        return size

    def stem_shape(self, resolution: int) -> LayerShape:
        return walk(self.to_arch_at(resolution))[0]

    def head_shape(self, resolution: int, in_width: int) -> LayerShape:
        size = self.layer_input_size(resolution, self.num_layers)
        return LayerShape("head", self.head, in_width, size, self.head.num_classes, 1)

    def to_arch_at(self, resolution: int) -> ArchSpec:
        choices = list(self.largest_choices())
        choices[0] = self.resolutions.index(resolution)
        return self.to_arch(choices)

    def unique_layer_shapes(self) -> Iterator[LayerShape]:
        """Every distinct layer of the space (of its table widths when ``sparse_table``)."""
        for resolution in self.resolutions:
            yield self.stem_shape(resolution)
            for layer in self.layers:
                in_widths = self.table_widths(self.input_widths(layer))
                out_widths = self.table_widths(self.stage_widths[layer.stage])
                pairs = (itertools.product(in_widths, out_widths) if layer.first
                         else ((width, width) for width in out_widths))
                for (in_width, out_width), name in itertools.product(pairs, layer.candidates):
                    yield self.layer_shape(resolution, layer, name, in_width, out_width)
            for width in self.table_widths(self.stage_widths[-1]):
                yield self.head_shape(resolution, width)


def dmasking_space(setting: str = "cifar", *, num_classes: int = 10, sparse_table: bool = False,
                   resolutions: Sequence[int] = RESOLUTIONS,
                   width_factors: Sequence[float] = WIDTH_FACTORS) -> DMaskingSpace:
    """The DMasking space over FBNet's CIFAR stages (module docstring)."""
    if setting != "cifar":
        raise SpecError(f"unknown DMasking setting {setting!r} (known: cifar)")
    suffix = ("" if num_classes == 10 else str(num_classes)) + ("-sparse" if sparse_table else "")
    return DMaskingSpace(
        name=f"dmasking-cifar{suffix}",
        resolutions=tuple(sorted(resolutions)),
        stem=StemSpec(out_channels=16, stride=1),
        stage_widths=tuple(scaled_widths(width, width_factors) for width in FBNET_WIDTHS),
        depths=FBNET_DEPTHS,
        strides=CIFAR_STRIDES,
        head=HeadSpec(out_channels=1504, num_classes=num_classes),
        sparse_table=sparse_table,
    )
