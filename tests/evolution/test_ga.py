"""Adaptive GA: known optimum of a constrained toy problem, bounded failure, Pareto front."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.cost.base import ChoiceCost
from hwnas.cost.budget import Budget, Constraint
from hwnas.evolution.config import GAConfig
from hwnas.evolution.ga import adaptive_ga, adaptive_rates, pareto_front
from hwnas.spaces.space import Decisions

DECISIONS = Decisions("toy", tuple(f"d{i}" for i in range(12)), (tuple(range(6)),) * 12)


def value(choices):
    return np.atleast_2d(choices).sum(axis=1).astype(float)


def test_finds_the_known_constrained_optimum():
    # Maximise sum(x) + 0.01 * x[0] subject to sum(x) <= 30: the optimum has sum 30 and x[0] = 5.
    def fitness(choices):
        return value(choices) + 0.01 * choices[:, 0]

    budget = Budget((Constraint(ChoiceCost(value, "sum"), 30.0),))
    result = adaptive_ga(DECISIONS, fitness, [budget], rng=np.random.default_rng(0),
                         config=GAConfig(population=60, generations=60))
    best = result.best_choices[0]
    assert best.sum() == 30 and best[0] == 5
    assert result.best_fitness[0] == pytest.approx(30.05)
    history = result.history
    assert (value(history["choices"][history["feasible"]]) <= 30).all()
    assert (~history["feasible"]).any()  # infeasible children were logged too


def test_infeasible_budget_raises_naming_it():
    budget = Budget((Constraint(ChoiceCost(value, "sum"), -1.0),), name="impossible")
    with pytest.raises(HwnasError, match=r"impossible.*sum <= -1 \(smallest seen \d+"):
        adaptive_ga(DECISIONS, value, [budget], rng=np.random.default_rng(0),
                    config=GAConfig(population=10, generations=3, sampling_rounds=3))


def test_one_best_per_budget_and_pareto_front():
    # fitness = sum - 0.1 * x[0]; cost = sum: the front is sum = s with x[0] as small as possible
    def fitness(choices):
        return value(choices) - 0.1 * choices[:, 0]

    budgets = [Budget((Constraint(ChoiceCost(value, "sum"), limit),)) for limit in (10.0, 40.0)]
    result = adaptive_ga(DECISIONS, fitness, budgets, rng=np.random.default_rng(1),
                         config=GAConfig(population=40, generations=40))
    assert result.best_fitness == [10.0, 40.0]
    points = result.pareto_points
    assert (np.diff(points[:, 1]) > 0).all() and (np.diff(points[:, 0]) > 0).all()
    assert points[-1].tolist() == [40.0, 40.0]


def test_srinivas_patnaik_rates():
    fitness = np.array([1.0, 2.0, 3.0, 6.0])  # mean 3, max 6
    rates = adaptive_rates(fitness, 6.0, 3.0, high=1.0, low=0.5)
    np.testing.assert_allclose(rates, [0.5, 0.5, 1.0, 0.0])


def test_pareto_front_is_non_dominated():
    accuracy = np.array([1.0, 2.0, 1.5, 3.0])
    cost = np.array([1.0, 2.0, 3.0, 4.0])
    assert list(pareto_front(accuracy, cost)) == [0, 1, 3]
