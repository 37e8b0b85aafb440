"""Fit the correction from a LUT sum to an end-to-end latency on a few calibration networks.

Three corrections of ``S = sum_l LUT[key_l]`` are fitted to measured latencies ``T``:

* ``offset``: ``T = S + b`` with ``b = median(T - S)`` (a fixed per-network overhead, e.g. ONNX
  Runtime's ``session.run`` cost paid once per network instead of once per block);
* ``scale``:  ``T = a * S`` with ``a = median(T / S)`` (torch eager's multiplicative cache gap);
* ``affine``: ``T = a * S + b``, Theil-Sen (median of pairwise slopes, robust to one bad point).

Medians, not least squares, because one calibration network caught in a slow episode of the
machine must not move the fit. Each fit's leave-one-out MAPE on the calibration networks is
recorded, and the one with the lowest is *selected* (with fewer than 4 networks only ``offset``
can be checked out of sample and is used). The file stores all three and says which was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats

from hwnas.errors import HwnasError

METHODS = ("offset", "scale", "affine")


def fit_offset(sums: np.ndarray, measured: np.ndarray) -> tuple[float, float]:
    return 1.0, float(np.median(measured - sums))


def fit_scale(sums: np.ndarray, measured: np.ndarray) -> tuple[float, float]:
    return float(np.median(measured / sums)), 0.0


def fit_affine(sums: np.ndarray, measured: np.ndarray) -> tuple[float, float]:
    if np.ptp(sums) == 0:
        return fit_offset(sums, measured)
    slope, intercept, _, _ = stats.theilslopes(measured, sums)
    return float(slope), float(intercept)


FITS: dict[str, Callable[[np.ndarray, np.ndarray], tuple[float, float]]] = {
    "offset": fit_offset, "scale": fit_scale, "affine": fit_affine,
}


def leave_one_out_mape(method: str, sums: np.ndarray, measured: np.ndarray) -> float | None:
    """Mean absolute percentage error of predicting each network from a fit on the others."""
    if len(sums) < 3:
        return None
    errors = []
    for index in range(len(sums)):
        keep = np.arange(len(sums)) != index
        scale, offset = FITS[method](sums[keep], measured[keep])
        predicted = scale * sums[index] + offset
        errors.append(abs(predicted - measured[index]) / measured[index])
    return 100.0 * float(np.mean(errors))


@dataclass(frozen=True)
class Calibration:
    """The selected correction plus everything needed to audit it."""

    method: str
    scale: float
    offset_ms: float
    fits: dict[str, dict[str, Any]]
    points: list[dict[str, Any]]
    reason: str
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "scale": self.scale, "offset_ms": self.offset_ms,
                "reason": self.reason, "fits": self.fits, "points": self.points,
                "settings": self.settings}

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        names = ("method", "scale", "offset_ms", "reason", "fits", "points", "settings")
        if not isinstance(data, dict) or set(data) != set(names):
            raise HwnasError(f"calibration: expected fields {names}, got {data!r:.200}")
        if data["method"] not in METHODS:
            raise HwnasError(f"calibration: method must be one of {METHODS}, "
                             f"got {data['method']!r}")
        for name in ("scale", "offset_ms"):
            value = data[name]
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not np.isfinite(value)):
                raise HwnasError(f"calibration: {name} must be a finite number, got {value!r}")
        if data["scale"] <= 0:
            raise HwnasError(f"calibration: scale must be positive, got {data['scale']!r}")
        if not isinstance(data["fits"], dict) or not isinstance(data["points"], list) or not (
            isinstance(data["settings"], dict)
        ):
            raise HwnasError("calibration: 'fits'/'settings' must be objects, 'points' a list")
        return cls(data["method"], float(data["scale"]), float(data["offset_ms"]),
                   data["fits"], data["points"], str(data["reason"]), data["settings"])


def fit_calibration(sums: Sequence[float], measured: Sequence[float],
                    archs: Sequence[str], settings: dict[str, Any]) -> Calibration:
    """Fit all corrections on calibration networks (LUT sums vs measured end-to-end ms)."""
    sums_array, measured_array = np.asarray(sums, float), np.asarray(measured, float)
    if len(sums_array) < 1 or len(sums_array) != len(measured_array):
        raise HwnasError(f"calibration needs matching sums and measurements, got "
                         f"{len(sums_array)} and {len(measured_array)}")
    fits = {}
    for method in METHODS:
        scale, offset = FITS[method](sums_array, measured_array)
        fits[method] = {"scale": scale, "offset_ms": offset,
                        "loo_mape": leave_one_out_mape(method, sums_array, measured_array)}
    if len(sums_array) < 4:
        method, reason = "offset", f"only {len(sums_array)} calibration networks: offset only"
    else:
        method = min(METHODS, key=lambda name: fits[name]["loo_mape"])
        reason = (f"lowest leave-one-out MAPE on {len(sums_array)} calibration networks ("
                  + ", ".join(f"{name} {fits[name]['loo_mape']:.2f} %" for name in METHODS) + ")")
    points = [{"arch": arch, "lut_sum_ms": float(s), "measured_ms": float(m)}
              for arch, s, m in zip(archs, sums_array, measured_array)]
    return Calibration(method, fits[method]["scale"], fits[method]["offset_ms"],
                       fits, points, reason, dict(settings))
