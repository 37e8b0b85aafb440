"""Gaussian-process regression over fixed-length architecture encodings (ChamNet's predictors).

ChamNet (Dai et al., CVPR 2019, Sec. 3) predicts accuracy and energy with a Gaussian process over
the architecture vector, choosing its training samples by Bayesian optimisation
(:mod:`hwnas.predictors.active`). This is that GP, sklearn-shaped (``fit(X, y)``,
``predict(X, return_std=True)``) and built on scikit-learn's ``GaussianProcessRegressor``.

Model. Targets are optionally log-transformed (``target_transform="log"``, for positive metrics such
as latency or energy, whose errors are multiplicative) and then standardised to zero mean and unit
variance; the GP models that standardised value ``z`` as

    z(x) = f(x) + eps,   f ~ GP(0, c * k(x, x')),   eps ~ N(0, s2),

with ``k`` a Matern-5/2 or RBF kernel on the encoding, isotropic or with one length scale per
input (``ard=True``), plus by default (``kernel="matern+linear"``) a linear term
``c2 (s0^2 + x . x')``; ``c``, ``c2``, ``s0``, the length scales and the noise ``s2`` are fitted by
maximising the marginal likelihood. The linear term: costs of one-hot-encoded layers are close
to additive, and with few points a Matern-only GP tends to fit everything as noise and predict a
constant (benchmarks/RESULTS.md, "Metric (energy) predictor"). The posterior of ``f`` at ``x`` is

    mean = k(x, X) (K + s2 I)^-1 z,   var = c k(x, x) - k(x, X) (K + s2 I)^-1 k(X, x).

:meth:`GaussianProcessPredictor.predict` maps the mean back to the metric's units (``exp`` of the
log-mean, i.e. the median, under the log transform) and returns the predictive standard deviation
(noise included, as scikit-learn does; under the log transform to first order, ``y * std_log``).
:meth:`GaussianProcessPredictor.model_posterior` gives the latent ``f`` posterior in the
standardised space, which is what acquisition functions use.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular
from scipy.spatial.distance import pdist
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import (
    RBF, ConstantKernel, DotProduct, Matern, WhiteKernel,
)
from threadpoolctl import threadpool_limits

from hwnas.errors import HwnasError

logger = logging.getLogger(__name__)

KERNELS = ("matern+linear", "matern", "rbf")
TARGET_TRANSFORMS = ("none", "log")


def _checked_matrix(X: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(X, dtype=float)
    if array.ndim != 2 or array.shape[0] == 0:
        raise HwnasError(f"{what} must be a non-empty 2-D array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise HwnasError(f"{what} has non-finite values")
    return array


class GaussianProcessPredictor:
    """GP regressor for architecture metrics; see the module docstring for the model."""

    def __init__(
        self,
        *,
        kernel: str = "matern+linear",
        ard: bool = False,
        target_transform: str = "none",
        restarts: int = 1,
        seed: int = 0,
        blas_threads: int | None = 1,
        start_kernel: Any = None,
    ) -> None:
        if kernel not in KERNELS:
            raise HwnasError(f"unknown GP kernel {kernel!r} (known: {', '.join(KERNELS)})")
        if target_transform not in TARGET_TRANSFORMS:
            raise HwnasError(f"unknown target_transform {target_transform!r} "
                             f"(known: {', '.join(TARGET_TRANSFORMS)})")
        if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 0:
            raise HwnasError(f"restarts must be an integer >= 0, got {restarts!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise HwnasError(f"seed must be an integer, got {seed!r}")
        self.kernel = kernel
        self.ard = bool(ard)
        self.target_transform = target_transform
        self.restarts = restarts
        if blas_threads is not None and (
            isinstance(blas_threads, bool) or not isinstance(blas_threads, int) or blas_threads < 1
        ):
            raise HwnasError(f"blas_threads must be None or an integer >= 1, got {blas_threads!r}")
        self.seed = int(seed)
        # GP matrices here are small (hundreds of rows): one BLAS thread is faster than several,
        # which on a shared machine mostly wait for each other (measured ~10x on 2 busy cores).
        self.blas_threads = blas_threads
        #: a fitted kernel (``kernel_state`` of an earlier fit) to start the hyper-parameter
        #: search from instead of :meth:`initial_kernel` (ChamNet's next BO round)
        self.start_kernel = start_kernel
        self._regressor: GaussianProcessRegressor | None = None

    # ---- target space -----------------------------------------------------------------------
    def _transform(self, y: np.ndarray) -> np.ndarray:
        if self.target_transform == "log":
            if (y <= 0).any():
                raise HwnasError("target_transform='log' needs positive targets, got "
                                 f"min {float(y.min())!r}")
            return np.log(y)
        return y

    def to_model_space(self, y: np.ndarray) -> np.ndarray:
        """Targets in the standardised (and log-transformed) space the GP models."""
        self._require_fitted()
        return (self._transform(np.asarray(y, dtype=float)) - self._offset) / self._scale

    def _from_model_space(self, z: np.ndarray) -> np.ndarray:
        transformed = self._offset + self._scale * z
        return np.exp(transformed) if self.target_transform == "log" else transformed

    # ---- fitting -----------------------------------------------------------------------------
    def initial_kernel(self, X: np.ndarray) -> Any:
        """The kernel the hyper-parameter fit starts from when no ``start_kernel`` is given."""
        # Start the length scale at the median pairwise distance: a scale-free choice that works
        # for one-hot (distances ~ sqrt(2 * Hamming)) and ordinal encodings alike.
        distances = pdist(X) if len(X) > 1 else np.array([1.0])
        positive = distances[distances > 0]
        scale = float(np.median(positive)) if positive.size else 1.0
        length_scale = np.full(X.shape[1], scale) if self.ard else scale
        bounds = (1e-2 * scale, 1e3 * scale)
        if self.kernel == "rbf":
            shape = RBF(length_scale=length_scale, length_scale_bounds=bounds)
        else:
            shape = Matern(length_scale=length_scale, length_scale_bounds=bounds, nu=2.5)
        signal = ConstantKernel(1.0, (1e-3, 1e3)) * shape
        if self.kernel == "matern+linear":
            # A linear term: costs of one-hot-encoded layers are close to additive (LUT sums), and
            # with few points the Matern-only fit tends to explain everything as noise.
            signal = signal + ConstantKernel(0.1, (1e-5, 1e2)) * DotProduct(1.0, (1e-5, 1e2))
        # (signal) + noise: ``kernel_.k1`` is the latent covariance, ``kernel_.k2`` the noise.
        return signal + WhiteKernel(1e-3, (1e-9, 1.0))

    def fit(self, X: np.ndarray, y: np.ndarray) -> GaussianProcessPredictor:
        """Fit the kernel hyper-parameters and the posterior on ``X`` [N, D] and targets ``y``."""
        X = _checked_matrix(X, "X")
        y = np.asarray(y, dtype=float).ravel()
        if y.shape[0] != X.shape[0]:
            raise HwnasError(f"X has {X.shape[0]} rows but y has {y.shape[0]} values")
        if len(y) < 2:
            raise HwnasError(f"a GP needs at least 2 training points, got {len(y)}")
        if not np.isfinite(y).all():
            raise HwnasError("y has non-finite values")
        transformed = self._transform(y)
        self._offset = float(transformed.mean())
        spread = float(transformed.std())
        self._scale = spread if spread > 0 else 1.0  # constant targets: nothing to scale
        regressor = GaussianProcessRegressor(
            kernel=self.initial_kernel(X) if self.start_kernel is None else self.start_kernel,
            n_restarts_optimizer=self.restarts,
            normalize_y=False,  # standardised above, so the log transform composes with it
            random_state=self.seed,
        )
        with warnings.catch_warnings(), threadpool_limits(self.blas_threads, user_api="blas"):
            # Hitting a bound (e.g. noise -> 1e-9 on noise-free LUT sums) is expected, not an error.
            warnings.simplefilter("ignore", ConvergenceWarning)
            regressor.fit(X, (transformed - self._offset) / self._scale)
        self._regressor = regressor
        logger.debug("GP fitted on %d points: %s", len(y), regressor.kernel_)
        return self

    def _require_fitted(self) -> GaussianProcessRegressor:
        if self._regressor is None:
            raise HwnasError("GaussianProcessPredictor is not fitted: call fit(X, y) first")
        return self._regressor

    # ---- the fitted posterior ---------------------------------------------------------------
    @property
    def fitted_kernel(self) -> str:
        return str(self._require_fitted().kernel_)

    @property
    def kernel_state(self) -> Any:
        """The fitted kernel object (a ``start_kernel`` for a later fit)."""
        return self._require_fitted().kernel_

    @property
    def noise_variance(self) -> float:
        """Fitted noise ``s2`` in the standardised space."""
        return float(self._require_fitted().kernel_.k2.noise_level)

    @property
    def training_inputs(self) -> np.ndarray:
        return self._require_fitted().X_train_

    def signal_covariance(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """Prior covariance ``c k(A, B)`` of the latent ``f`` (noise excluded)."""
        return self._require_fitted().kernel_.k1(np.asarray(A, float), np.asarray(B, float))

    def whitened_cross_covariance(self, X: np.ndarray) -> np.ndarray:
        """``L^-1 k(X_train, X)`` with ``L L^T = K + s2 I``: posterior covariance is
        ``k(a, b) - V[:, a] . V[:, b]``."""
        regressor = self._require_fitted()
        cross = self.signal_covariance(regressor.X_train_, X)
        with threadpool_limits(self.blas_threads, user_api="blas"):
            return solve_triangular(regressor.L_, cross, lower=True, check_finite=False)

    def posterior_mean(self, X: np.ndarray) -> np.ndarray:
        """Posterior mean of ``f`` at ``X`` in the standardised space: ``K(X, X_train) alpha``,
        without the triangular solve the std needs (what a GA ranking by predicted accuracy
        scores, many times faster on large populations)."""
        regressor = self._require_fitted()
        X = _checked_matrix(X, "X")
        with threadpool_limits(self.blas_threads, user_api="blas"):
            return self.signal_covariance(X, regressor.X_train_) @ regressor.alpha_

    def model_posterior(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std of the latent ``f`` at ``X``, in the standardised space."""
        regressor = self._require_fitted()
        X = _checked_matrix(X, "X")
        with threadpool_limits(self.blas_threads, user_api="blas"):
            cross = self.signal_covariance(X, regressor.X_train_)
            mean = cross @ regressor.alpha_
            whitened = solve_triangular(regressor.L_, cross.T, lower=True, check_finite=False)
        prior = regressor.kernel_.k1.diag(X)
        variance = np.clip(prior - np.einsum("ij,ij->j", whitened, whitened), 0.0, None)
        return mean, np.sqrt(variance)

    def predict(
        self, X: np.ndarray, return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predicted metric at ``X`` in its own units, and optionally the predictive std."""
        mean, latent_std = self.model_posterior(X)
        prediction = self._from_model_space(mean)
        if not return_std:
            return prediction
        std_model = np.sqrt(latent_std**2 + self.noise_variance) * self._scale
        std = prediction * std_model if self.target_transform == "log" else std_model
        return prediction, std
