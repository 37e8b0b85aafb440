"""Search operators on integer choice vectors, shared by every space.

An architecture of a space is a tuple of choice indices, one per dimension (a layer's candidate,
an edge's operation, a group's width...), dimension ``d`` taking values ``0..cardinalities[d]-1``.
All operators take an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hwnas.errors import HwnasError


def sample_choices(cardinalities: Sequence[int], rng: np.random.Generator) -> tuple[int, ...]:
    """Each dimension uniform over its options."""
    return tuple(int(rng.integers(0, count)) for count in cardinalities)


def mutate_choices(
    choices: Sequence[int],
    cardinalities: Sequence[int],
    rng: np.random.Generator,
    probability: float | None = None,
) -> tuple[int, ...]:
    """Move each searchable dimension (more than one option) to another option with
    ``probability`` (default 1 / searchable dimensions); at least one dimension always changes,
    so a mutant differs from its parent."""
    values = list(choices)
    counts = np.asarray(cardinalities)
    searchable = np.flatnonzero(counts > 1)
    if len(searchable) == 0:
        raise HwnasError("cannot mutate: no dimension has more than one option")
    probability = 1.0 / len(searchable) if probability is None else probability
    if not 0.0 <= probability <= 1.0:
        raise HwnasError(f"mutation probability must be in [0, 1], got {probability!r}")
    mutated = searchable[rng.random(len(searchable)) < probability]
    if len(mutated) == 0:
        mutated = [int(rng.choice(searchable))]
    for dimension in mutated:
        offset = int(rng.integers(1, counts[dimension]))
        values[dimension] = (values[dimension] + offset) % int(counts[dimension])
    return tuple(values)


def crossover_choices(
    first: Sequence[int], second: Sequence[int], rng: np.random.Generator
) -> tuple[int, ...]:
    """Uniform crossover: each dimension comes from either parent with probability 1/2."""
    take_first = rng.random(len(first)) < 0.5
    return tuple(int(a if pick else b) for a, b, pick in zip(first, second, take_first))
