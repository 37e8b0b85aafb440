import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.spaces.operators import crossover_choices, mutate_choices, sample_choices


def test_sample_respects_cardinalities():
    rng = np.random.default_rng(0)
    draws = np.array([sample_choices((1, 2, 5), rng) for _ in range(500)])
    assert set(draws[:, 0]) == {0} and set(draws[:, 1]) == {0, 1}
    assert set(draws[:, 2]) == set(range(5))


def test_mutation_changes_only_searchable_dimensions_and_always_something():
    rng = np.random.default_rng(1)
    parent = (0, 1, 3)
    for _ in range(200):
        child = mutate_choices(parent, (1, 2, 5), rng, probability=0.0)
        assert child != parent and child[0] == 0
        assert sum(a != b for a, b in zip(parent, child)) == 1
    with pytest.raises(HwnasError, match="1.5"):
        mutate_choices(parent, (1, 2, 5), rng, probability=1.5)


def test_crossover_takes_each_dimension_from_a_parent():
    rng = np.random.default_rng(2)
    children = {crossover_choices((0, 0, 0, 0), (1, 1, 1, 1), rng) for _ in range(100)}
    assert len(children) > 8 and all(set(child) <= {0, 1} for child in children)
