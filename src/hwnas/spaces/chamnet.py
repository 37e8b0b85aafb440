"""The ChamNet search space (Dai et al., CVPR 2019), written as data.

ChamNet adapts MobileNetV2 (Sandler et al. 2018): seven groups of inverted-residual bottlenecks
(3x3 depthwise, ReLU6) between a 3x3 stem and a 1x1 head. Searched (docs/reference.md
section 2, from the released models): the input resolution, the stem width, each group's output
channels, number of blocks and (integer) expansion, and the head width. Only a group's first
block has the group's stride. Settings:

* ``chamnet`` (ImageNet): 128..224 px (step 16), stem stride 2, group strides 1,2,2,2,1,2,1,
  1000 classes. The option lists are the union of the values of ChamNet-A..F and
  MobileNetV2-1.0 plus neighbours, so every released model is in the space (ChamNet-E's
  "64x4 (1+3)" group is the zoo's two groups 64x1 s2 + 64x3 s1, i.e. group 5 at width 64).
  The released ChamNets keep the first 1x1 conv of their e=1 block (an ``fbnet`` block with
  ``first_pointwise``); ``e1_first_pointwise=True`` (the ``chamnet`` default) builds that,
  ``False`` the pure MobileNetV2 stack that holds ``mobilenet_v2()``.
* ``chamnet-cifar``: 32 px only, stem stride 1, group strides 1,1,2,2,1,2,1 (the FBNet CIFAR
  setting), 10 classes and deliberately small option sets (3 widths per group, expansions
  {3,4,6}, depths <= 3) so that its latency table (222 unique layer keys) is measured in minutes.

An architecture is one option *index* per decision, in the order of
``ChamNetSpace.decisions.names``: ``resolution, stem, width_1..7, depth_1..7, expansion_1..7,
head``. :meth:`ChamNetSpace.encode` is the numeric vector a predictor sees (each decision's
value scaled to [0, 1] over its options).
Unlike the FBNet space, a block's input width depends on the previous group's choice, so the
space enumerates its distinct layers itself (:meth:`ChamNetSpace.unique_layer_shapes`).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from hwnas.arch.build import LayerShape, conv_output_size
from hwnas.arch.spec import ArchSpec, Block, FBNetBlock, HeadSpec, MBV2Block, SpecError, StemSpec
from hwnas.errors import HwnasError
from hwnas.spaces.space import (
    ChoiceFunction, Decisions, LayerPriceFunction, contains_arch, format_network, parse_network,
)

NUM_GROUPS = 7
IMAGENET_STRIDES = (1, 2, 2, 2, 1, 2, 1)  # MobileNetV2 Table 1
CIFAR_STRIDES = (1, 1, 2, 2, 1, 2, 1)  # FBNet / HW-NAS-Bench CIFAR setting


@dataclass(frozen=True)
class ChamNetSpace:
    """MobileNetV2-style space with per-dimension option lists (see the module docstring)."""

    name: str
    resolutions: tuple[int, ...]
    stem_widths: tuple[int, ...]
    widths: tuple[tuple[int, ...], ...]  # per group
    depths: tuple[tuple[int, ...], ...]
    expansions: tuple[tuple[int, ...], ...]
    head_widths: tuple[int, ...]
    strides: tuple[int, ...]
    stem_stride: int
    num_classes: int
    dropout: float = 0.0
    e1_first_pointwise: bool = False

    def __post_init__(self) -> None:
        for label, per_group in (("widths", self.widths), ("depths", self.depths),
                                 ("expansions", self.expansions), ("strides", self.strides)):
            if len(per_group) != NUM_GROUPS:
                raise SpecError(f"ChamNet space {self.name!r}: {label} needs {NUM_GROUPS} "
                                f"groups, got {len(per_group)}")
        for name, options in zip(self.decisions.names, self.decisions.options):
            if min(options) <= 0:
                raise SpecError(f"ChamNet space {self.name!r}: decision {name} needs positive "
                                f"options, got {options!r}")

    @functools.cached_property
    def decisions(self) -> Decisions:
        """``resolution, stem, width_1..7, depth_1..7, expansion_1..7, head``."""
        groups = range(1, NUM_GROUPS + 1)
        names = ("resolution", "stem", *(f"width_{g}" for g in groups),
                 *(f"depth_{g}" for g in groups), *(f"expansion_{g}" for g in groups), "head")
        options = (self.resolutions, self.stem_widths, *self.widths, *self.depths,
                   *self.expansions, self.head_widths)
        return Decisions(self.name, names, options)

    @property
    def resolution(self) -> int:
        """The input resolution of a single-resolution space (what a latency table prices)."""
        if len(self.resolutions) != 1:
            raise HwnasError(f"space {self.name!r} searches the resolution "
                             f"({', '.join(map(str, self.resolutions))}); a latency table prices "
                             f"one resolution: use a single-resolution space such as chamnet-cifar")
        return self.resolutions[0]

    def lut_metadata(self) -> dict[str, Any]:
        """What a latency table stores about this space (see :mod:`hwnas.cost.lut`)."""
        return {"name": self.name, "resolution": self.resolution, "num_classes": self.num_classes,
                "num_layers": self.decisions.count, "candidates": list(self.decisions.names)}

    # ---- choices <-> architectures -----------------------------------------------------------
    def block(self, width: int, stride: int, expansion: int) -> Block:
        """One bottleneck: MBV2 (k3, ReLU6), or the released e=1 block with its 1x1 conv."""
        if expansion == 1 and self.e1_first_pointwise:
            return FBNetBlock(out_channels=width, stride=stride, kernel_size=3, expansion=1,
                              first_pointwise=True)
        return MBV2Block(out_channels=width, stride=stride, kernel_size=3, expansion=expansion)

    def stem_spec(self, width: int) -> StemSpec:
        return StemSpec(out_channels=width, stride=self.stem_stride, kernel_size=3,
                        activation="relu6")

    def head_spec(self, width: int) -> HeadSpec:
        return HeadSpec(out_channels=width, num_classes=self.num_classes, activation="relu6",
                        dropout=self.dropout)

    def to_arch(self, choices: Sequence[int]) -> ArchSpec:
        """The network of ``choices`` (one option index per decision)."""
        values = self.decisions.values_of(choices)
        blocks = []
        for group in range(1, NUM_GROUPS + 1):
            for position in range(values[f"depth_{group}"]):
                stride = self.strides[group - 1] if position == 0 else 1
                blocks.append(self.block(values[f"width_{group}"], stride,
                                         values[f"expansion_{group}"]))
        return ArchSpec(resolution=values["resolution"], stem=self.stem_spec(values["stem"]),
                        blocks=tuple(blocks), head=self.head_spec(values["head"]))

    def choices_of(self, arch: ArchSpec) -> tuple[int, ...]:
        """Inverse of :meth:`to_arch`; an architecture outside the space raises naming why."""
        def index(name: str, options: tuple[int, ...], value: object) -> int:
            if value not in options:
                raise SpecError(f"architecture is not in space {self.name!r}: {name} {value!r} "
                                f"is not one of {options}")
            return options.index(value)

        chosen = {"resolution": index("resolution", self.resolutions, arch.resolution)}
        stem_width = arch.stem.out_channels
        chosen["stem"] = index("stem width", self.stem_widths, stem_width)
        if arch.stem != self.stem_spec(stem_width):
            raise SpecError(f"architecture is not in space {self.name!r}: stem {arch.stem}")
        head_width = arch.head.out_channels
        chosen["head"] = index("head width", self.head_widths, head_width)
        if arch.head != self.head_spec(head_width):
            raise SpecError(f"architecture is not in space {self.name!r}: head {arch.head}")
        groups = self._parse_groups(tuple(arch.blocks), 1)
        if groups is None:
            raise SpecError(f"architecture is not in space {self.name!r}: its {len(arch.blocks)} "
                            f"blocks do not split into the space's {NUM_GROUPS} groups of k3 "
                            f"bottlenecks (strides {self.strides})")
        for group, (width, depth, expansion) in enumerate(groups, start=1):
            chosen[f"width_{group}"] = self.widths[group - 1].index(width)
            chosen[f"depth_{group}"] = self.depths[group - 1].index(depth)
            chosen[f"expansion_{group}"] = self.expansions[group - 1].index(expansion)
        choices = tuple(chosen[name] for name in self.decisions.names)
        if self.to_arch(choices) != arch:
            raise SpecError(f"architecture is not in space {self.name!r}")
        return choices

    def _parse_groups(self, blocks: tuple[Block, ...], group: int
                      ) -> list[tuple[int, int, int]] | None:
        """(width, depth, expansion) of groups ``group..7`` covering ``blocks``, or None.

        Shortest depth first: a stride-1 group of the same width and expansion as the previous
        one (ChamNet-E's 64x1 s2 + 64x3 s1) is otherwise ambiguous, and either reading builds the
        same network.
        """
        if group > NUM_GROUPS:
            return [] if not blocks else None
        if not blocks:
            return None
        first = blocks[0]
        width, expansion = first.out_channels, getattr(first, "expansion", None)
        if width not in self.widths[group - 1] or expansion not in self.expansions[group - 1]:
            return None
        for depth in self.depths[group - 1]:
            expected = tuple(self.block(width, self.strides[group - 1] if position == 0 else 1,
                                        expansion) for position in range(depth))
            if blocks[:depth] == expected:
                rest = self._parse_groups(blocks[depth:], group + 1)
                if rest is not None:
                    return [(width, depth, expansion), *rest]
        return None

    contains = contains_arch
    format = format_network
    parse = parse_network

    def encode(self, matrix: np.ndarray) -> np.ndarray:
        """Each decision's value scaled to [0, 1] over its options, ``[N, 24]``."""
        return self.decisions.scaled(matrix)

    # ---- distinct layers (for latency tables and per-group cost tables) ---------------------
    def group_input_sizes(self, resolution: int) -> tuple[int, ...]:
        """Spatial size entering each group at ``resolution`` (fixed by the strides alone)."""
        size = conv_output_size(resolution, self.stem_stride)
        sizes = []
        for stride in self.strides:
            sizes.append(size)
            size = conv_output_size(size, stride)
        return (*sizes, size)  # the last entry enters the head

    def stem_layer(self, resolution: int, width: int) -> LayerShape:
        out_size = conv_output_size(resolution, self.stem_stride)
        return LayerShape("stem", self.stem_spec(width), 3, resolution, width, out_size)

    def block_layer(self, resolution: int, group: int, in_width: int, width: int,
                    expansion: int, first: bool) -> LayerShape:
        """Group ``group`` (1-based) block: its first (strided) one, or a repeat (stride 1)."""
        size = self.group_input_sizes(resolution)[group - 1]
        if not first:
            size = conv_output_size(size, self.strides[group - 1])
        stride = self.strides[group - 1] if first else 1
        return LayerShape("blocks.0", self.block(width, stride, expansion), in_width, size,
                          width, conv_output_size(size, stride))

    def head_layer(self, resolution: int, in_width: int, width: int) -> LayerShape:
        size = self.group_input_sizes(resolution)[-1]
        return LayerShape("head", self.head_spec(width), in_width, size, self.num_classes, 1)

    def unique_layer_shapes(self) -> Iterator[LayerShape]:
        """Every distinct layer any architecture of the space has (for latency tables)."""
        for resolution in self.resolutions:
            for width in self.stem_widths:
                yield self.stem_layer(resolution, width)
            previous = self.stem_widths
            for group in range(1, NUM_GROUPS + 1):
                widths, expansions = self.widths[group - 1], self.expansions[group - 1]
                for in_width, width, expansion in itertools.product(previous, widths, expansions):
                    yield self.block_layer(resolution, group, in_width, width, expansion, True)
                if max(self.depths[group - 1]) > 1:
                    for width, expansion in itertools.product(widths, expansions):
                        yield self.block_layer(resolution, group, width, width, expansion, False)
                previous = widths
            for in_width, width in itertools.product(previous, self.head_widths):
                yield self.head_layer(resolution, in_width, width)

    def layer_sums(self, price: LayerPriceFunction) -> ChoiceFunction:
        """``stem + sum_g [first_g + (depth_g - 1) repeat_g] + head``, every table indexed by
        the decisions it depends on (resolution, previous width, width, expansion) and filled
        once from the space's distinct layers, so a population is priced by look-ups."""
        resolutions = self.resolutions
        stem = np.array([[price(self.stem_layer(r, w)) for w in self.stem_widths]
                         for r in resolutions])
        first, repeat, previous = [], [], self.stem_widths
        for group in range(1, NUM_GROUPS + 1):
            widths, expansions = self.widths[group - 1], self.expansions[group - 1]
            first.append(np.array([[[[price(self.block_layer(r, group, p, w, e, True))
                                      for e in expansions] for w in widths] for p in previous]
                                   for r in resolutions]))
            repeat.append(np.array([[[price(self.block_layer(r, group, w, w, e, False))
                                      if max(self.depths[group - 1]) > 1 else 0.0
                                      for e in expansions] for w in widths]
                                    for r in resolutions]))
            previous = widths
        head = np.array([[[price(self.head_layer(r, p, h)) for h in self.head_widths]
                          for p in previous] for r in resolutions])
        depth_values = [np.asarray(d) for d in self.depths]

        def sums(choices: np.ndarray) -> np.ndarray:
            C = np.atleast_2d(np.asarray(choices))
            r, widths, depths, expansions = C[:, 0], C[:, 2:9], C[:, 9:16], C[:, 16:23]
            total, previous_width = stem[r, C[:, 1]].astype(float), C[:, 1]
            for g in range(NUM_GROUPS):
                total = total + first[g][r, previous_width, widths[:, g], expansions[:, g]]
                total = total + (depth_values[g][depths[:, g]] - 1) * \
                    repeat[g][r, widths[:, g], expansions[:, g]]
                previous_width = widths[:, g]
            return total + head[r, previous_width, C[:, 23]]

        return sums


def chamnet_space(setting: str = "imagenet", *, num_classes: int | None = None,
                  e1_first_pointwise: bool | None = None,
                  dropout: float | None = None) -> ChamNetSpace:
    """The ChamNet space in its ``"imagenet"`` or ``"cifar"`` setting (module docstring)."""
    if setting == "imagenet":
        return ChamNetSpace(
            name="chamnet",
            resolutions=(128, 144, 160, 176, 192, 208, 224),
            stem_widths=(8, 16, 24, 32),
            widths=((8, 16, 24, 32), (16, 24, 32, 40, 48), (24, 32, 40, 48, 56),
                    (40, 48, 64, 80, 92, 96, 112), (64, 80, 96, 104, 128, 160),
                    (96, 128, 160, 200, 248), (128, 192, 224, 256, 320, 384, 480)),
            depths=((1, 2), (1, 2, 3), (1, 2, 3, 4), (1, 2, 3, 4, 5), (1, 2, 3, 4), (1, 2, 3, 4),
                    (1, 2)),
            expansions=((1,),) + ((2, 3, 4, 5, 6),) * 6,
            head_widths=(1024, 1280, 1520, 1600, 1792, 1984, 2016),
            strides=IMAGENET_STRIDES, stem_stride=2,
            num_classes=1000 if num_classes is None else num_classes,
            dropout=0.2 if dropout is None else dropout,
            e1_first_pointwise=True if e1_first_pointwise is None else e1_first_pointwise,
        )
    if setting == "cifar":
        return ChamNetSpace(
            name="chamnet-cifar",
            resolutions=(32,),
            stem_widths=(16, 24, 32),
            widths=((8, 16, 24), (16, 24, 32), (24, 32, 40), (48, 64, 80), (72, 96, 112),
                    (96, 128, 160), (192, 256, 320)),
            depths=((1,), (1, 2), (1, 2, 3), (1, 2, 3), (1, 2, 3), (1, 2, 3), (1,)),
            expansions=((1,),) + ((3, 4, 6),) * 6,
            head_widths=(640, 960, 1280),
            strides=CIFAR_STRIDES, stem_stride=1,
            num_classes=10 if num_classes is None else num_classes,
            dropout=0.0 if dropout is None else dropout,
            e1_first_pointwise=False if e1_first_pointwise is None else e1_first_pointwise,
        )
    raise SpecError(f"unknown ChamNet setting {setting!r} (known: imagenet, cifar)")
