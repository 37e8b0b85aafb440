"""Small helpers shared by the tests."""

from __future__ import annotations

import numpy as np

from hwnas.arch.spec import ArchSpec


def sample_archs(space, count: int, seed: int = 0) -> list[ArchSpec]:
    """``count`` uniformly random networks of a space (its decisions' own sampler)."""
    rows = space.decisions.sample(count, np.random.default_rng(seed))
    return [space.to_arch(row) for row in rows]


def sample_arch(space, seed: int = 0) -> ArchSpec:
    return sample_archs(space, 1, seed)[0]
