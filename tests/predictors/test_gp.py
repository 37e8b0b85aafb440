"""Gaussian-process predictor: interpolation, uncertainty, transforms, validation."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.predictors.gp import GaussianProcessPredictor
from hwnas.spaces import get_space


def _additive_problem(rows: int, seed: int = 0):
    """One-hot 6 x 5 encodings and a noise-free additive metric (like a LUT sum)."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 3.0, size=(6, 5))
    choices = rng.integers(0, 5, size=(rows, 6))
    values = 10 + weights[np.arange(6), choices].sum(axis=1)
    return get_space("nb201").decisions.one_hot(choices), values


def test_one_hot_encoding():
    decisions = get_space("nb201").decisions
    encoded = decisions.one_hot(np.array([[0, 2, 0, 0, 0, 4], [1, 1, 0, 0, 0, 0]]))
    assert encoded[0].nonzero()[0].tolist() == [0, 7, 10, 15, 20, 29]
    assert encoded[1].nonzero()[0].tolist() == [1, 6, 10, 15, 20, 25]
    with pytest.raises(HwnasError, match="out of range"):
        decisions.one_hot(np.array([[5, 0, 0, 0, 0, 0]]))


@pytest.mark.parametrize("kernel", ["matern+linear", "matern", "rbf"])
def test_interpolates_training_points(kernel):
    X, y = _additive_problem(40)
    model = GaussianProcessPredictor(kernel=kernel, seed=0).fit(X, y)
    prediction, std = model.predict(X, return_std=True)
    assert np.abs(prediction - y).max() < 1e-2 * y.std()
    assert std.max() < 0.05 * y.std()


def test_generalises_and_is_uncertain_away_from_data():
    X, y = _additive_problem(400, seed=1)
    # The default kernel's linear term recovers an additive metric almost exactly ...
    linear = GaussianProcessPredictor(seed=0).fit(X[:150], y[:150])
    assert np.sqrt(np.mean((linear.predict(X[150:]) - y[150:]) ** 2)) < 0.01 * y.std()
    # ... while a Matern-only GP generalises less well and knows it is unsure off the data.
    model = GaussianProcessPredictor(kernel="matern", seed=0).fit(X[:150], y[:150])
    prediction = model.predict(X[150:])
    assert np.sqrt(np.mean((prediction - y[150:]) ** 2)) < 0.2 * y.std()
    _, latent_at_train = model.model_posterior(X[:150])
    _, latent_new = model.model_posterior(X[150:])
    assert latent_new.mean() > 3 * latent_at_train.mean()


def test_log_target_and_ard_fit_positive_metrics():
    X, y = _additive_problem(60, seed=2)
    model = GaussianProcessPredictor(target_transform="log", ard=True, seed=0).fit(X, y)
    prediction = model.predict(X)
    assert (prediction > 0).all() and np.abs(prediction / y - 1).max() < 0.02
    assert model.to_model_space(y).mean() == pytest.approx(0.0, abs=1e-9)


def test_seeded_fits_are_reproducible():
    X, y = _additive_problem(30, seed=3)
    first = GaussianProcessPredictor(restarts=2, seed=7).fit(X, y).predict(X[:5])
    second = GaussianProcessPredictor(restarts=2, seed=7).fit(X, y).predict(X[:5])
    assert np.array_equal(first, second)


def test_validation():
    with pytest.raises(HwnasError, match="unknown GP kernel 'linear'.*matern\\+linear"):
        GaussianProcessPredictor(kernel="linear")
    with pytest.raises(HwnasError, match="target_transform 'sqrt'"):
        GaussianProcessPredictor(target_transform="sqrt")
    with pytest.raises(HwnasError, match="restarts"):
        GaussianProcessPredictor(restarts=-1)
    model = GaussianProcessPredictor()
    with pytest.raises(HwnasError, match="not fitted"):
        model.predict(np.zeros((1, 3)))
    with pytest.raises(HwnasError, match="3 rows but y has 2"):
        model.fit(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(HwnasError, match="positive targets"):
        GaussianProcessPredictor(target_transform="log").fit(np.eye(3), np.array([1.0, -1, 2]))
