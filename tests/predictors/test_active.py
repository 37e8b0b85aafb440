"""BO sample selection: EI finds a known optimum faster than random; batches and validation."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.errors import HwnasError
from sklearn.gaussian_process import GaussianProcessRegressor

from hwnas.predictors.active import (
    FantasyPosterior, expected_improvement, select_by_bayesian_optimisation,
)
from hwnas.predictors.gp import GaussianProcessPredictor


def FAST_GP(seed: int) -> GaussianProcessPredictor:  # noqa: N802 - used like a constant
    return GaussianProcessPredictor(restarts=0, seed=seed)


GRID = np.stack(np.meshgrid(np.linspace(0, 1, 21), np.linspace(0, 1, 21)), -1).reshape(-1, 2)
# A smooth bowl with its unique minimum at the grid point (0.3, 0.7).
VALUES = (GRID[:, 0] - 0.3) ** 2 + (GRID[:, 1] - 0.7) ** 2 + 0.3 * np.sin(6 * GRID[:, 0]) ** 2
OPTIMUM = int(np.argmin(VALUES))


def _evaluations_to_optimum(indices: np.ndarray) -> int:
    hits = np.flatnonzero(indices == OPTIMUM)
    return int(hits[0]) + 1 if hits.size else len(GRID)


def test_expected_improvement_formula():
    # With std 0, EI is the plain improvement; with mean == best it is std * phi(0).
    assert expected_improvement(np.array([1.0]), np.array([0.0]), 3.0)[0] == pytest.approx(2.0)
    assert expected_improvement(np.array([0.0]), np.array([2.0]), 0.0)[0] == pytest.approx(
        2.0 / np.sqrt(2 * np.pi))


def test_expected_improvement_finds_known_optimum_faster_than_random():
    bo_counts, random_counts = [], []
    for seed in range(4):
        selection = select_by_bayesian_optimisation(
            GRID, lambda rows: VALUES[rows], budget=40, rng=np.random.default_rng(seed),
            acquisition="expected_improvement", initial=5, batch_size=2,
            predictor_factory=FAST_GP,
        )
        bo_counts.append(_evaluations_to_optimum(selection.indices))
        random_counts.append(
            _evaluations_to_optimum(np.random.default_rng(seed).permutation(len(GRID))))
    # The grid has 441 points: random search needs ~220 evaluations on average.
    assert max(bo_counts) <= 40
    assert np.mean(bo_counts) < np.mean(random_counts) / 3


def test_maximise_goal_finds_the_maximum():
    selection = select_by_bayesian_optimisation(
        GRID, lambda rows: -VALUES[rows], budget=40, rng=np.random.default_rng(0),
        acquisition="expected_improvement", initial=5, batch_size=4, goal="maximise",
        predictor_factory=FAST_GP,
    )
    assert selection.best("maximise")[0] == OPTIMUM


def test_fantasy_conditioning_equals_refitting_with_the_point_added():
    rng = np.random.default_rng(0)
    X, y = rng.random((12, 3)), rng.random(12)
    candidates = rng.random((30, 3))
    model = GaussianProcessPredictor(seed=0).fit(X, y)
    posterior = FantasyPosterior(model, candidates)
    posterior.condition(4)
    posterior.condition(17)
    # Exact reference: the same fixed kernel conditioned on the training points plus both picks.
    exact = GaussianProcessRegressor(kernel=model._regressor.kernel_, optimizer=None)
    exact.fit(np.vstack([X, candidates[[4, 17]]]), np.zeros(14))
    _, std = exact.predict(candidates, return_std=True)
    assert np.allclose(posterior.variance, std**2 - model.noise_variance, atol=1e-8)


def test_uncertainty_batches_spread_and_keep_order():
    line = np.linspace(0, 1, 101)[:, None]
    start = list(range(30, 71, 5))  # 9 measured points in the middle
    selection = select_by_bayesian_optimisation(
        line, lambda rows: np.sin(3 * line[rows, 0]), budget=13, rng=np.random.default_rng(0),
        acquisition="uncertainty", start_indices=start, batch_size=2,
    )
    assert selection.indices[:9].tolist() == start
    assert selection.round_sizes == (9, 2, 2)
    assert len(set(selection.indices.tolist())) == 13
    first_batch = sorted(selection.indices[9:11].tolist())
    assert first_batch == [0, 100]  # the two far ends, not two neighbours
    assert np.allclose(selection.values, np.sin(3 * line[selection.indices, 0]))


def test_max_rounds_and_candidate_subset_cap_the_work():
    selection = select_by_bayesian_optimisation(
        GRID, lambda rows: VALUES[rows], budget=100, rng=np.random.default_rng(1),
        initial=4, batch_size=5, max_rounds=2, candidates_per_round=50,
    )
    assert len(selection.indices) == 14 and selection.round_sizes == (4, 5, 5)


def test_validation():
    rng = np.random.default_rng(0)
    oracle = lambda rows: VALUES[rows]  # noqa: E731
    with pytest.raises(HwnasError, match="unknown acquisition 'ucb'"):
        select_by_bayesian_optimisation(GRID, oracle, budget=10, rng=rng, acquisition="ucb")
    with pytest.raises(HwnasError, match="unknown goal"):
        select_by_bayesian_optimisation(GRID, oracle, budget=10, rng=rng, goal="best")
    with pytest.raises(HwnasError, match="numpy.random.Generator"):
        select_by_bayesian_optimisation(GRID, oracle, budget=10, rng=0)
    with pytest.raises(HwnasError, match="start_indices"):
        select_by_bayesian_optimisation(GRID, oracle, budget=10, rng=rng, start_indices=[3, 3])
    with pytest.raises(HwnasError, match="oracle returned 1 values for 5"):
        select_by_bayesian_optimisation(GRID, lambda rows: [1.0], budget=10, rng=rng, initial=5)
    with pytest.raises(HwnasError, match="batch_size"):
        select_by_bayesian_optimisation(GRID, oracle, budget=10, rng=rng, batch_size=0)
