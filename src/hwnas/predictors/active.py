"""Choose which architectures to measure by Bayesian optimisation (ChamNet's sample selection).

ChamNet (Dai et al., CVPR 2019, Sec. 3.1) builds its accuracy and energy predictors from a small
number of measured architectures chosen iteratively: fit a Gaussian process on what has been
measured, pick the next batch by an acquisition function, measure it, refit. This module does that
over a *pool* of encoded candidates (rows of ``pool``) and an *oracle* that measures a batch of
pool rows; it knows nothing about networks, so the same loop serves energy, latency and accuracy.

Acquisitions (``acquisition=``), computed on the GP's latent posterior in its standardised space:

* ``"uncertainty"``: maximise the posterior std ``sigma(x)``, for building a predictor (active
  learning: measure where the model knows least);
* ``"expected_improvement"``: for finding the optimum,
  ``EI(x) = (b - mu) Phi(u) + sigma phi(u)``, ``u = (b - mu) / sigma``, with ``b`` the best value
  measured so far (minimised; ``goal="maximise"`` flips the sign).

Batches are chosen greedily with "kriging believer" fantasies: after each pick the posterior is
conditioned on a pretend measurement equal to its own mean, which leaves every mean unchanged and
shrinks the variance near the pick, ``var'(x) = var(x) - cov(x, p)^2 / (var(p) + s2)``. So a batch
spreads out instead of repeating one region, at the cost of one kernel column per pick.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.stats import norm

from hwnas.errors import HwnasError
from hwnas.predictors.gp import GaussianProcessPredictor

logger = logging.getLogger(__name__)

ACQUISITIONS = ("uncertainty", "expected_improvement")
GOALS = ("minimise", "maximise")

Oracle = Callable[[np.ndarray], Sequence[float]]
PredictorFactory = Callable[[int], GaussianProcessPredictor]


@dataclass(frozen=True)
class ActiveSelection:
    """The measured pool rows in the order they were chosen, and what the oracle returned."""

    indices: np.ndarray  # [M] pool row indices, in order
    values: np.ndarray  # [M] measured metric of each
    round_sizes: tuple[int, ...]  # points measured in each round (the first is the random start)
    predictor: GaussianProcessPredictor  # the GP fitted on all measured points

    def best(self, goal: str = "minimise") -> tuple[int, float]:
        """(pool index, value) of the best measured point."""
        position = int(np.argmin(self.values) if goal == "minimise" else np.argmax(self.values))
        return int(self.indices[position]), float(self.values[position])


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """EI for minimisation: ``E[max(best - f, 0)]`` with ``f ~ N(mean, std^2)``."""
    gain = best - mean
    safe = np.maximum(std, 1e-12)
    u = gain / safe
    value = gain * norm.cdf(u) + safe * norm.pdf(u)
    return np.where(std > 1e-12, value, np.maximum(gain, 0.0))


def _check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise HwnasError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _checked_start(start: Sequence[int], pool_size: int, budget: int) -> np.ndarray:
    indices = np.asarray(start)
    valid = (
        indices.ndim == 1 and 2 <= len(indices) <= budget
        and np.issubdtype(indices.dtype, np.integer)
        and indices.min() >= 0 and indices.max() < pool_size
        and len(set(indices.tolist())) == len(indices)
    )
    if not valid:
        raise HwnasError(f"start_indices must be 2..{budget} distinct pool rows in "
                         f"0..{pool_size - 1}, got {list(start)!r}")
    return indices.astype(np.int64)


def _measure(oracle: Oracle, indices: np.ndarray) -> np.ndarray:
    values = np.asarray(oracle(indices.copy()), dtype=float).ravel()
    if values.shape != indices.shape:
        raise HwnasError(f"oracle returned {values.size} values for {indices.size} architectures")
    if not np.isfinite(values).all():
        raise HwnasError(f"oracle returned non-finite values for pool rows {indices.tolist()}")
    return values


class FantasyPosterior:
    """The GP's latent posterior over candidate rows, conditioned on pretend measurements.

    Conditioning on a measurement at row ``p`` equal to its posterior mean (kriging believer)
    keeps all means and updates the covariance by one rank-one term,
    ``cov'(a, b) = cov(a, b) - cov(a, p) cov(p, b) / (var(p) + s2)``; the terms are kept as
    vectors, so each pick costs one kernel column and ``O(candidates x (train + picks))``.
    """

    def __init__(self, predictor: GaussianProcessPredictor, candidates: np.ndarray) -> None:
        self.predictor = predictor
        self.candidates = candidates
        self.mean, std = predictor.model_posterior(candidates)
        self.variance = std**2
        self._whitened = predictor.whitened_cross_covariance(candidates)
        self._noise = predictor.noise_variance
        self._fantasies: list[np.ndarray] = []

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.clip(self.variance, 0.0, None))

    def condition(self, row: int) -> None:
        """Condition on a pretend noisy measurement at candidate ``row``."""
        column = self.predictor.signal_covariance(
            self.candidates, self.candidates[row : row + 1])[:, 0]
        covariance = column - self._whitened.T @ self._whitened[:, row]
        for fantasy in self._fantasies:
            covariance -= fantasy * fantasy[row]
        fantasy = covariance / math.sqrt(max(self.variance[row], 0.0) + self._noise)
        self.variance = self.variance - fantasy**2
        self._fantasies.append(fantasy)


def greedy_batch(
    predictor: GaussianProcessPredictor,
    candidates: np.ndarray,
    count: int,
    acquisition: str,
    incumbent: float,
    sign: float,
) -> list[int]:
    """Pick ``count`` rows of ``candidates`` (positions) with kriging-believer fantasies."""
    posterior = FantasyPosterior(predictor, candidates)
    mean = sign * posterior.mean  # minimisation in the standardised space from here on
    picked: list[int] = []
    for _ in range(min(count, len(candidates))):
        if acquisition == "uncertainty":
            scores = posterior.std
        else:
            scores = expected_improvement(mean, posterior.std, incumbent)
        scores[picked] = -np.inf
        choice = int(np.argmax(scores))
        picked.append(choice)
        posterior.condition(choice)
        incumbent = min(incumbent, float(mean[choice]))  # the believer's pretend measurement
    return picked


def select_by_bayesian_optimisation(
    pool: np.ndarray,
    oracle: Oracle,
    *,
    budget: int,
    rng: np.random.Generator,
    acquisition: str = "uncertainty",
    initial: int = 10,
    batch_size: int = 10,
    max_rounds: int | None = None,
    goal: str = "minimise",
    predictor_factory: PredictorFactory | None = None,
    start_indices: Sequence[int] | None = None,
    candidates_per_round: int | None = None,
) -> ActiveSelection:
    """Measure up to ``budget`` pool rows: ``initial`` at random, then GP-chosen batches.

    ``pool`` is ``[P, D]`` encodings; ``oracle(indices)`` measures pool rows and returns one value
    each. Each round fits a fresh GP (``predictor_factory(seed)``, default
    :class:`GaussianProcessPredictor`, seeds drawn from ``rng``) on all measured points and picks
    ``batch_size`` more by ``acquisition``. Stops at ``budget`` points, after ``max_rounds``
    GP-chosen rounds, or when the pool is exhausted. ``start_indices`` replaces the random
    start with given pool rows (e.g. architectures already measured); ``initial`` is then ignored.
    ``candidates_per_round`` scores only that many random unmeasured rows per round (a cheaper
    acquisition search on large pools); ``None`` scores them all.
    """
    if acquisition not in ACQUISITIONS:
        raise HwnasError(f"unknown acquisition {acquisition!r} (known: {', '.join(ACQUISITIONS)})")
    if goal not in GOALS:
        raise HwnasError(f"unknown goal {goal!r} (known: {', '.join(GOALS)})")
    if not isinstance(rng, np.random.Generator):
        raise HwnasError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    pool = np.asarray(pool, dtype=float)
    if pool.ndim != 2 or len(pool) < 2:
        raise HwnasError(f"pool must be a 2-D array with at least 2 rows, got shape {pool.shape}")
    budget = min(_check_int("budget", budget, 2), len(pool))
    initial = min(_check_int("initial", initial, 2), budget)
    batch_size = _check_int("batch_size", batch_size, 1)
    if max_rounds is not None:
        max_rounds = _check_int("max_rounds", max_rounds, 0)
    if candidates_per_round is not None:
        candidates_per_round = _check_int("candidates_per_round", candidates_per_round, 1)
    factory = predictor_factory or (lambda seed: GaussianProcessPredictor(seed=seed))
    sign = 1.0 if goal == "minimise" else -1.0

    if start_indices is None:
        indices = rng.choice(len(pool), size=initial, replace=False)
    else:
        indices = _checked_start(start_indices, len(pool), budget)
    values = _measure(oracle, indices)
    round_sizes = [len(indices)]
    while True:
        predictor = factory(int(rng.integers(2**31 - 1))).fit(pool[indices], values)
        rounds_done = len(round_sizes) - 1
        if len(indices) >= budget or (max_rounds is not None and rounds_done >= max_rounds):
            break
        unmeasured = np.setdiff1d(np.arange(len(pool)), indices)
        if candidates_per_round is not None and len(unmeasured) > candidates_per_round:
            unmeasured = np.sort(rng.choice(unmeasured, candidates_per_round, replace=False))
        incumbent = float(np.min(sign * predictor.to_model_space(values)))
        count = min(batch_size, budget - len(indices))
        picked = unmeasured[
            greedy_batch(predictor, pool[unmeasured], count, acquisition, incumbent, sign)
        ]
        indices = np.concatenate([indices, picked])
        values = np.concatenate([values, _measure(oracle, picked)])
        round_sizes.append(len(picked))
        logger.info("BO round %d (%s): %d measured, best %.6g", rounds_done + 1, acquisition,
                    len(indices), float(np.min(sign * values) * sign))
    return ActiveSelection(indices, values, tuple(round_sizes), predictor)
