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


#: the run-control arguments of run_dnas / run_dmasking (the rest are config settings)
RUN_ARGUMENTS = ("run_dir", "resume", "progress", "plots")
#: the settings these tests were written with (the library's defaults before the config types
#: took the command line's): weights lr 0.1, no warm-up epochs, no fixed layers
TEST_DEFAULTS = dict(weight_lr=0.1, warmup_epochs=0)


def dnas_config(**values):
    """A DnasConfig from the test defaults and ``values`` (dict fixed_layers accepted)."""
    from hwnas.dnas.config import DnasConfig

    values = {**TEST_DEFAULTS, "fix_transitions": None, **values}
    if isinstance(values.get("fixed_layers"), dict):
        values["fixed_layers"] = tuple(sorted(values["fixed_layers"].items()))
    if values.get("warm_start") is not None:
        values["warm_start"] = str(values["warm_start"])
    return DnasConfig(**values)


def run_dnas(space, cost, weights, theta, **arguments):
    """``hwnas.dnas.layerwise.run_dnas`` with settings given as keywords (:func:`dnas_config`)."""
    from hwnas.dnas.layerwise import run_dnas as run

    control = {key: arguments.pop(key) for key in RUN_ARGUMENTS if key in arguments}
    return run(space, cost, weights, theta, dnas_config(**arguments), **control)


def run_dmasking(space, cost, weights, theta, **arguments):
    """``hwnas.dnas.masked.run_dmasking`` with settings given as keywords."""
    from hwnas.dnas.config import DMaskingConfig
    from hwnas.dnas.masked import run_dmasking as run

    control = {key: arguments.pop(key) for key in RUN_ARGUMENTS if key in arguments}
    values = {**TEST_DEFAULTS, **arguments}
    if isinstance(values.get("fixed_layers"), dict):
        values["fixed_layers"] = tuple(sorted(values["fixed_layers"].items()))
    return run(space, cost, weights, theta, DMaskingConfig(**values), **control)
