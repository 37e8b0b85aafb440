"""A per-key correction of a latency table, fitted to networks timed end to end.

FBNet's sum (Wu et al. 2019, Eq. 5) times every operator alone; inside a network an operator
runs beside its neighbours (ONNX Runtime fuses and schedules the whole graph, caches hold other
weights), so some keys cost more or less there than alone, and the calibration's one
``scale * S + offset`` (:mod:`hwnas.cost.calibration`) cannot fix a per-key difference. With
``n_k(a)`` the count of key ``k`` in network ``a`` and ``L_k`` its table latency, the corrected
prediction is

    T(a) = scale * sum_k n_k(a) L_k (1 + c_k) + offset + d,

where the corrections ``c_k`` and the overhead ``d`` solve a ridge regression, weighted by
``1 / T^2`` (relative errors), of the calibration's residuals ``T - (scale * S + offset)`` on
the columns ``x_k(a) = scale * n_k(a)
L_k``, each scaled to unit norm so that one penalty fits every key (``d``, the intercept, is not
penalised): a key that few networks hold, or that explains little, is shrunk towards 0, and a
key no network holds keeps 0. The penalty is chosen by leave-one-out over a fixed grid
(scikit-learn's ``RidgeCV``, whose leave-one-out errors are exact for ridge). A key timed alone
pays a call's overhead that inside a network it does not (an identity costs nothing in a fused
graph), so a correction may reach ``MINIMUM = -1`` (price 0) but no further: no price is
negative; the clipped keys are counted. When the corrected model's leave-one-out MAPE is no
better than the calibration's own MAPE on the same networks, the correction is not applied (all
``c_k = 0``, ``d = 0``; the record says so), as the calibration keeps the fit that predicts
networks it did not see best. The idea of learning what the sum misses from measured networks is
nn-Meter's and HELP's (a predictor per kernel, resp. per device); here it is a shrunk per-key
factor, so that a table stays a table: per-layer prices that DNAS and the GA add up. What it
buys on fbnet-cifar is measured in benchmarks/RESULTS.md ("Session-robust timing").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hwnas.errors import HwnasError

PENALTIES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
MINIMUM = -1.0  # a price never falls below 0
MIN_NETWORKS = 8  # fewer networks than this cannot choose a penalty out of sample


@dataclass(frozen=True)
class KeyCorrection:
    """How the per-key corrections were fitted (the values live on the table's entries)."""

    networks: int
    penalty: float
    offset_ms: float
    loo_mape_pct: float
    uncorrected_mape_pct: float
    keys_corrected: int
    keys_clipped: int
    applied: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"networks": self.networks, "penalty": self.penalty, "offset_ms": self.offset_ms,
                "loo_mape_pct": self.loo_mape_pct,
                "uncorrected_mape_pct": self.uncorrected_mape_pct,
                "keys_corrected": self.keys_corrected, "keys_clipped": self.keys_clipped,
                "applied": self.applied, "penalties": list(PENALTIES)}

    @classmethod
    def from_dict(cls, data: Any) -> KeyCorrection:
        names = ("networks", "penalty", "loo_mape_pct", "uncorrected_mape_pct",
                 "keys_corrected", "keys_clipped")
        if not isinstance(data, dict) or not set(names) <= set(data):
            raise HwnasError(f"correction: expected fields {names}, got {data!r:.200}")
        for name in names:
            value = data[name]
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not np.isfinite(value) or value < 0):
                raise HwnasError(f"correction: {name} must be a finite number >= 0, "
                                 f"got {value!r}")
        offset = data.get("offset_ms", 0.0)
        if isinstance(offset, bool) or not isinstance(offset, (int, float)) or not (
                np.isfinite(offset)):
            raise HwnasError(f"correction: offset_ms must be a finite number, got {offset!r}")
        applied = data.get("applied", True)
        if not isinstance(applied, bool):
            raise HwnasError(f"correction: applied must be true or false, got {applied!r}")
        return cls(int(data["networks"]), float(data["penalty"]), float(offset),
                   float(data["loo_mape_pct"]), float(data["uncorrected_mape_pct"]),
                   int(data["keys_corrected"]), int(data["keys_clipped"]), applied)


def fit_key_correction(contributions: np.ndarray, measured: np.ndarray, scale: float,
                       offset: float) -> tuple[np.ndarray, KeyCorrection]:
    """Corrections ``c_k`` (one per column of ``contributions``, networks x keys holding
    ``n_k L_k``) from the networks' ``measured`` latencies and the calibration's ``scale`` and
    ``offset``; see the module docstring (the record holds ``d`` as ``offset_ms``). Needs at
    least ``MIN_NETWORKS`` networks."""
    from sklearn.linear_model import RidgeCV  # only a build fits; reading a table must not pay

    contributions = np.asarray(contributions, float)
    measured = np.asarray(measured, float)
    if contributions.ndim != 2 or len(contributions) != len(measured):
        raise HwnasError(f"a key correction needs one row of contributions per measured "
                         f"network, got {contributions.shape} and {measured.shape}")
    if len(measured) < MIN_NETWORKS:
        raise HwnasError(f"a key correction needs at least {MIN_NETWORKS} networks, "
                         f"got {len(measured)}")
    baseline = scale * contributions.sum(1) + offset
    columns = scale * contributions
    norms = np.sqrt((columns ** 2).sum(0))
    held = norms > 0
    features = columns[:, held] / norms[held]
    # With a scoring, cv_results_ holds each network's leave-one-out prediction (without, the
    # squared errors); the penalty is chosen by the same mean squared error either way.
    ridge = RidgeCV(alphas=PENALTIES, fit_intercept=True, store_cv_results=True,
                    scoring="neg_mean_squared_error")
    # Weighted by 1 / T^2: the squared *relative* errors, so that small networks count as much
    # as large ones (in ms the largest networks dominate and the smallest stay off by 7-16 %).
    ridge.fit(features, measured - baseline, sample_weight=1.0 / measured ** 2)
    corrections = np.zeros(contributions.shape[1])
    corrections[held] = ridge.coef_ / norms[held]
    clipped = int((corrections < MINIMUM).sum())
    corrections = np.maximum(corrections, MINIMUM)
    index = PENALTIES.index(ridge.alpha_)
    left_out = baseline + ridge.cv_results_[:, index]
    loo_mape = 100.0 * float(np.mean(np.abs(left_out - measured) / measured))
    uncorrected = 100.0 * float(np.mean(np.abs(baseline - measured) / measured))
    applied = loo_mape < uncorrected
    if not applied:
        corrections[:] = 0.0
    record = KeyCorrection(
        networks=len(measured), penalty=float(ridge.alpha_),
        offset_ms=float(ridge.intercept_) if applied else 0.0, loo_mape_pct=loo_mape,
        uncorrected_mape_pct=uncorrected, keys_corrected=int((corrections != 0).sum()),
        keys_clipped=clipped if applied else 0, applied=applied)
    return corrections, record
