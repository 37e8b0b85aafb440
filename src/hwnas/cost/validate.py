"""Validate a latency table against end-to-end measurements of random networks.

``validate_lut`` samples N uniformly random architectures of the table's space (seeded, never one
of the calibration networks), predicts each with the table, measures each end to end with the
table's own engine (interleaved rounds, medians; see :mod:`hwnas.cost.engines`), and reports

* MAPE = mean_i |pred_i - meas_i| / meas_i (percent);
* the share of networks with |pred - meas| / meas <= 5 % and <= 10 % (percent);
* Spearman's rho and Kendall's tau between predicted and measured (rank fidelity, what a search
  needs); and the same numbers for the raw LUT sum and each fitted correction, for comparison;

plus a predicted-vs-measured scatter plot (PNG).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy import stats

from hwnas.arch.spec import ArchSpec
from hwnas.cost.engines import TimingSettings, check_same_engine, engine_from_metadata
from hwnas.cost.lut import LatencyTable, LutError
from hwnas.cost.lutbuild import NETWORK_TIMING, Progress, _no_progress, measure_networks
from hwnas.errors import HwnasError
from hwnas.io import atomic_write_json
from hwnas.spaces import get_space


def fidelity_metrics(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, Any]:
    """MAPE, within +-5 % / +-10 % (percent of networks), Spearman, Kendall, signed bias."""
    predicted_array, measured_array = np.asarray(predicted, float), np.asarray(measured, float)
    if predicted_array.shape != measured_array.shape or predicted_array.size == 0:
        raise HwnasError(f"need equally many predictions and measurements, got "
                         f"{predicted_array.size} and {measured_array.size}")
    relative = (predicted_array - measured_array) / measured_array
    ranked = (predicted_array.size >= 2 and np.ptp(predicted_array) > 0
              and np.ptp(measured_array) > 0)
    return {
        "n": int(predicted_array.size),
        "mape": 100.0 * float(np.mean(np.abs(relative))),
        "within_5pct": 100.0 * float(np.mean(np.abs(relative) <= 0.05)),
        "within_10pct": 100.0 * float(np.mean(np.abs(relative) <= 0.10)),
        "spearman": float(stats.spearmanr(predicted_array, measured_array)[0]) if ranked else None,
        "kendall": float(stats.kendalltau(predicted_array, measured_array)[0]) if ranked else None,
        "median_signed_error_pct": 100.0 * float(np.median(relative)),
        "max_abs_error_pct": 100.0 * float(np.max(np.abs(relative))),
    }


def scatter_plot(predicted: Sequence[float], measured: Sequence[float], path: str | Path,
                 title: str) -> Path:
    """Predicted vs measured latency with the y = x line and a +-10 % band (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(5, 5))
    try:
        axes.scatter(measured, predicted, s=14, alpha=0.7)
        low = 0.95 * min(min(predicted), min(measured))
        high = 1.05 * max(max(predicted), max(measured))
        line = np.array([low, high])
        axes.plot(line, line, color="black", linewidth=1, label="predicted = measured")
        axes.plot(line, 1.1 * line, color="grey", linestyle="--", linewidth=1, label="+-10 %")
        axes.plot(line, 0.9 * line, color="grey", linestyle="--", linewidth=1)
        axes.set(xlim=(low, high), ylim=(low, high), xlabel="measured latency (ms)",
                 ylabel="LUT-predicted latency (ms)", title=title)
        axes.legend(loc="upper left")
        figure.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp.png")
        figure.savefig(temporary, dpi=120)
        temporary.replace(path)  # atomic, like every other result file
    finally:
        pyplot.close(figure)
    return path


def validation_archs(table: LatencyTable, space: Any, count: int, seed: int) -> list[ArchSpec]:
    """``count`` distinct uniformly random architectures, none of them a calibration network."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise HwnasError(f"--n must be an integer >= 2, got {count!r}")
    excluded = {point["arch"] for point in table.calibration.points} if table.calibration else set()
    rng = np.random.default_rng(seed)
    archs: dict[str, ArchSpec] = {}
    while len(archs) < count:  # a collision in a 9^22 space is rare; the loop ends quickly
        arch = space.sample(rng)
        if arch.to_string() not in excluded:
            archs.setdefault(arch.to_string(), arch)
    return list(archs.values())


def _alternatives(table: LatencyTable, sums: np.ndarray, measured: np.ndarray) -> dict[str, Any]:
    """Fidelity of the raw sum and of every stored fit, to show what the correction buys."""
    result = {"raw_sum": fidelity_metrics(sums, measured)}
    if table.calibration:
        for method, fit in table.calibration.fits.items():
            predicted = fit["scale"] * sums + fit["offset_ms"]
            result[method] = fidelity_metrics(predicted, measured)
    return result


def validate_lut(table: LatencyTable, *, n: int = 100, seed: int = 0,
                 out_dir: str | Path | None = None, timing: TimingSettings = NETWORK_TIMING,
                 label: str | None = None, on_progress: Progress = _no_progress) -> dict[str, Any]:
    """Measure ``n`` random networks of the table's space end to end and compare (module doc).

    Writes ``<out_dir>/<label>-validation.json`` and ``<label>-scatter.png`` when ``out_dir``
    is given. Refuses when this machine's engine differs from the table's (CPU, version, ...).
    """
    started = time.perf_counter()
    space = get_space(table.space_name)
    table.check_space(space)
    if not table.is_complete(space):
        raise LutError(f"{table.describe()} is incomplete: run `hwnas lut build` again to finish")
    engine = engine_from_metadata(table.engine)
    check_same_engine(table.engine, engine.metadata(), f"cannot validate {table.describe()}")
    archs = validation_archs(table, space, n, seed)
    sums = np.array([table.raw_sum(arch) for arch in archs])
    predicted = table.scale * sums + table.offset_ms
    timings = measure_networks(archs, engine, timing, on_progress=on_progress)
    measured = np.array([stats.median_ms for stats in timings])
    label = label or engine.label
    result = {
        **fidelity_metrics(predicted, measured),
        "label": label, "lut": table.source, "space": table.space, "engine": table.engine,
        "seed": seed, "timing": timing.to_dict(),
        "prediction": {"method": table.calibration.method if table.calibration else "raw_sum",
                       "scale": table.scale, "offset_ms": table.offset_ms},
        "alternatives": _alternatives(table, sums, measured),
        "networks": [{"arch": arch.to_string(), "lut_sum_ms": float(s), "predicted_ms": float(p),
                      **stats.to_dict()} for arch, s, p, stats in zip(archs, sums, predicted,
                                                                       timings)],
        "validate_s": time.perf_counter() - started,
    }
    if out_dir is not None:
        out_dir = Path(out_dir)
        tau = "n/a" if result["kendall"] is None else f"{result['kendall']:.2f}"
        title = (f"{label}: MAPE {result['mape']:.1f} %, {result['within_10pct']:.0f} % within "
                 f"10 %, tau {tau}")
        result["plot"] = str(scatter_plot(predicted, measured, out_dir / f"{label}-scatter.png",
                                          title))
        atomic_write_json(out_dir / f"{label}-validation.json", result)
    return result
