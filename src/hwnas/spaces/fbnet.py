"""The FBNet layer-wise search space (Wu et al., CVPR 2019, Tables 1 and 2), written as data.

22 searchable layers in 7 stages (widths 16/24/32/64/112/184/352, depths 1/4/4/4/4/4/1), each
choosing one of 9 candidates. Only the first layer of a stage has the stage's stride. Settings:

* ``fbnet-imagenet``: 224 px, stem 16 stride 2, strides 1/2/2/2/1/2/1, head 1984 (B/C) or 1504
  (A), 1000 classes (paper Table 1; HW-NAS-Bench ``hw_nas_bench_api.py``);
* ``fbnet-cifar``: 32 px, stem 16 stride 1, strides 1/1/2/2/1/2/1, head 1504, 10 classes
  (HW-NAS-Bench's CIFAR setting); ``fbnet-cifar100`` the same with 100 classes, which is what the
  real-device tables in ``fbnet_lut_cifar100.json`` price.

An architecture in the space is a tuple of candidate indices, one per layer (the HW-NAS-Bench
``arch_index`` order); :meth:`LayerwiseSpace.to_arch` turns it into an :class:`ArchSpec`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwnas.arch.spec import ArchSpec, Block, FBNetBlock, HeadSpec, SkipBlock, SpecError, StemSpec
from hwnas.spaces import operators

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
        writes its output in its own channel coordinates (see ``hwnas.dnas.search``)."""
        widths = [self.stem.out_channels] + [width for width, _ in self.layer_shapes]
        return tuple(layer for layer, (width, stride) in enumerate(self.layer_shapes)
                     if stride != 1 or width != widths[layer])

    @property
    def num_candidates(self) -> int:
        return len(self.candidates)

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Options per dimension (every layer has all candidates)."""
        return (self.num_candidates,) * self.num_layers

    @property
    def size(self) -> int:
        """Exact number of architectures: candidates ** layers."""
        return self.num_candidates**self.num_layers

    def to_arch(self, choices: Sequence[int]) -> ArchSpec:
        """The architecture with candidate ``choices[l]`` at searchable layer ``l``."""
        choices = self._checked(choices)
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

    def contains(self, arch: ArchSpec) -> bool:
        try:
            self.choices_of(arch)
        except SpecError:
            return False
        return True

    def _checked(self, choices: Sequence[int]) -> tuple[int, ...]:
        choices = tuple(int(choice) for choice in choices)
        if len(choices) != self.num_layers:
            raise SpecError(
                f"space {self.name!r} needs {self.num_layers} choices, got {len(choices)}"
            )
        for index, choice in enumerate(choices):
            if not 0 <= choice < self.num_candidates:
                raise SpecError(
                    f"space {self.name!r}: choice {choice} at layer {index} is not in "
                    f"0..{self.num_candidates - 1}"
                )
        return choices

    # ---- search operators: all take an explicit numpy Generator ----------------------------
    def sample_choices(self, rng: np.random.Generator) -> tuple[int, ...]:
        return operators.sample_choices(self.cardinalities, rng)

    def sample(self, rng: np.random.Generator) -> ArchSpec:
        """A uniformly random architecture of the space."""
        return self.to_arch(self.sample_choices(rng))

    def mutate_choices(
        self, choices: Sequence[int], rng: np.random.Generator, probability: float | None = None
    ) -> tuple[int, ...]:
        """Another candidate at each layer with ``probability`` (default 1/layers); at least
        one layer changes (:func:`hwnas.spaces.operators.mutate_choices`)."""
        return operators.mutate_choices(self._checked(choices), self.cardinalities, rng,
                                        probability)

    def mutate(
        self, arch: ArchSpec, rng: np.random.Generator, probability: float | None = None
    ) -> ArchSpec:
        return self.to_arch(self.mutate_choices(self.choices_of(arch), rng, probability))

    def crossover_choices(
        self, first: Sequence[int], second: Sequence[int], rng: np.random.Generator
    ) -> tuple[int, ...]:
        """Uniform crossover: each layer comes from either parent with probability 1/2."""
        return operators.crossover_choices(self._checked(first), self._checked(second), rng)

    def crossover(self, first: ArchSpec, second: ArchSpec, rng: np.random.Generator) -> ArchSpec:
        return self.to_arch(
            self.crossover_choices(self.choices_of(first), self.choices_of(second), rng)
        )


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
