"""Helpers for the DNAS tests: a tiny layer-wise space, an exact additive cost, synthetic data.

A module with a unique name (not ``conftest``) so tests can import it unambiguously.
"""

from __future__ import annotations

import numpy as np
import torch

from hwnas.arch.spec import ArchSpec, HeadSpec, StemSpec
from hwnas.cost.base import CostModel
from hwnas.spaces.fbnet import LayerwiseSpace, Stage

TINY_CANDIDATES = ("k3_e1", "k3_e3", "k5_e1_g2", "skip")


def tiny_space(candidates: tuple[str, ...] = TINY_CANDIDATES) -> LayerwiseSpace:
    """3 searchable layers (stage widths 8, 16 x 2; one stride-2 layer) at 8 px, 4 classes."""
    return LayerwiseSpace(
        name="tiny",
        resolution=8,
        stem=StemSpec(out_channels=8, stride=1),
        stages=(Stage(8, 1, 1), Stage(16, 2, 2)),
        head=HeadSpec(out_channels=16, num_classes=4),
        candidates=candidates,
    )


class TableCost(CostModel):
    """An exactly additive cost: ``constant + sum_l matrix[l, choice_l]`` (ms)."""

    name = "table"
    unit = "ms"

    def __init__(self, space: LayerwiseSpace, matrix: np.ndarray, constant: float = 1.0) -> None:
        self.space = space
        self.matrix = np.asarray(matrix, dtype=float)
        self.constant = constant

    def cost(self, arch: ArchSpec) -> float:
        choices = self.space.choices_of(arch)
        return self.constant + float(self.matrix[np.arange(len(choices)), choices].sum())


def synthetic_batches(
    count: int, batch_size: int, *, resolution: int = 8, classes: int = 4, seed: int = 0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` batches of random images whose label is the brightest quarter (learnable)."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        images = torch.randn(batch_size, 3, resolution, resolution, generator=generator)
        quarters = images[:, 0].reshape(batch_size, 2, resolution // 2, 2, resolution // 2)
        labels = quarters.mean(dim=(2, 4)).flatten(1).argmax(dim=1) % classes
        batches.append((images, labels))
    return batches
