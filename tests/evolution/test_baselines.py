"""Random search and regularized evolution respect budgets on tabular NB201."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.cost.device_table import NB201Latency
from hwnas.data.tables import nb201_latency
from hwnas.errors import HwnasError
from hwnas.evolution.baselines import random_search, regularized_evolution
from hwnas.evolution.evaluators import NB201Evaluator

DEVICE = "hwnb_cifar10_pixel3_latency_ms"


@pytest.fixture(scope="module")
def evaluator():
    return NB201Evaluator("cifar10_test_200ep")


@pytest.mark.parametrize("search", [random_search, regularized_evolution])
def test_baselines_respect_the_budget(evaluator, search):
    latency = nb201_latency(DEVICE)
    limit = float(np.percentile(latency, 25))
    result = search(evaluator.space, evaluator, (NB201Latency(DEVICE), limit),
                    evaluations=60, seed=3)
    assert len(result.accuracy) == 60
    assert len({row.tobytes() for row in result.choices}) == 60  # no repeats
    assert (latency[evaluator.indices(result.choices)] <= limit).all()
    np.testing.assert_allclose(result.accuracy, evaluator.evaluate(result.choices))


def test_rea_beats_its_own_start(evaluator):
    cost = NB201Latency(DEVICE)
    limit = float(np.percentile(nb201_latency(DEVICE), 50))
    result = regularized_evolution(evaluator.space, evaluator, (cost, limit), evaluations=100,
                                   seed=0)
    assert result.accuracy.max() >= result.accuracy[:20].max()


@pytest.mark.parametrize("search", [random_search, regularized_evolution])
def test_infeasible_budget_raises(evaluator, search):
    with pytest.raises(HwnasError, match="infeasible"):
        search(evaluator.space, evaluator, (NB201Latency(DEVICE), 0.0),
               evaluations=10, max_rounds=2)
