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

from hwnas import settings
from hwnas.arch.spec import ArchSpec
from hwnas.cost.engines import check_same_engine, engine_from_metadata
from hwnas.cost.lut_config import LutValidateConfig
from hwnas.cost.lut import LatencyTable, LutError
from hwnas.cost.lutbuild import Progress, _no_progress, measure_networks
from hwnas.errors import HwnasError
from hwnas.runs import RunFolder, first_difference, open_run
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
    excluded = {point["arch"] for point in table.calibration.points} if table.calibration else set()
    rng = np.random.default_rng(seed)
    archs: dict[str, ArchSpec] = {}
    while len(archs) < count:  # collisions are rare in a large space; the loop ends quickly
        for row in space.decisions.sample(count - len(archs), rng):
            arch = space.to_arch(row)
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


def validate_lut(table: LatencyTable, config: LutValidateConfig | None = None, *,
                 out_dir: str | Path | None = None, resume: bool = False,
                 label: str | None = None, on_progress: Progress = _no_progress
                 ) -> dict[str, Any]:
    """Measure ``config.n`` random networks of the table's space end to end and compare (module
    doc). With ``out_dir``, a run folder (:mod:`hwnas.runs`): ``history.jsonl`` holds every
    measured network (appended chunk by chunk: ``resume`` measures only the rest),
    ``result.json`` the comparison and ``scatter.png`` the plot. Refuses when this machine's
    engine differs from the table's (CPU, version, ...)."""
    config = config or LutValidateConfig()
    started = time.perf_counter()
    space = get_space(table.space_name, "lut")
    table.check_space(space)
    if not table.is_complete(space):
        raise LutError(f"{table.describe()} is incomplete: run `hwnas lut build` again to finish")
    engine = engine_from_metadata(table.engine)
    check_same_engine(table.engine, engine.metadata(), f"cannot validate {table.describe()}")
    archs = validation_archs(table, space, config.n, config.seed)
    folder = None if out_dir is None else open_run(
        out_dir, command="lut_validate", resume=resume, compare=_same_validation,
        config={"lut": table.source, "space": table.space, "engine": table.engine,
                "validate": settings.to_dict(config)})
    try:
        measured = _measure(archs, engine, config, folder, on_progress)
        result = _comparison(table, archs, measured, config, label or engine.label)
        result["validate_s"] = time.perf_counter() - started
        if folder is not None:
            title = (f"{result['label']}: MAPE {result['mape']:.1f} %, "
                     f"{result['within_10pct']:.0f} % within 10 %, tau "
                     + ("n/a" if result["kendall"] is None else f"{result['kendall']:.2f}"))
            predicted = [row["predicted_ms"] for row in result["networks"]]
            result["plot"] = str(scatter_plot(predicted, [row["median_ms"] for row in measured],
                                              folder.path("scatter.png"), title))
            folder.write_result(result)
        return result
    finally:
        if folder is not None:
            folder.close()


def _same_validation(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    return first_difference({**saved, "validate": None}, {**current, "validate": None}) or \
        settings.resume_difference(LutValidateConfig, saved.get("validate"), current["validate"],
                                   "validate")


def _measure(archs: Sequence[ArchSpec], engine: Any, config: LutValidateConfig,
             folder: RunFolder | None, on_progress: Progress) -> list[dict[str, Any]]:
    """Per network ``{"arch", median/p10/p90, count}``: from the folder's history, the rest
    measured in chunks (interleaved rounds within a chunk), each chunk appended on the spot."""
    done = {row["arch"]: row for row in (folder.read_history() if folder else [])}
    pending = [arch for arch in archs if arch.to_string() not in done]
    for start in range(0, len(pending), config.chunk_size):
        chunk = pending[start:start + config.chunk_size]
        stats = measure_networks(chunk, engine, config.timing, chunk_size=config.chunk_size,
                                 on_progress=on_progress)
        rows = [{"arch": arch.to_string(), **timing.to_dict()}
                for arch, timing in zip(chunk, stats)]
        done.update((row["arch"], row) for row in rows)
        if folder is not None:
            folder.append_history(rows)
    return [done[arch.to_string()] for arch in archs]


def _comparison(table: LatencyTable, archs: Sequence[ArchSpec], measured: list[dict[str, Any]],
                config: LutValidateConfig, label: str) -> dict[str, Any]:
    sums = np.array([table.raw_sum(arch) for arch in archs])
    predicted = table.scale * sums + table.offset_ms
    times = np.array([row["median_ms"] for row in measured])
    return {
        **fidelity_metrics(predicted, times),
        "label": label, "lut": table.source, "space": table.space, "engine": table.engine,
        "seed": config.seed, "timing": config.timing.to_dict(),
        "prediction": {"method": table.calibration.method if table.calibration else "raw_sum",
                       "scale": table.scale, "offset_ms": table.offset_ms},
        "alternatives": _alternatives(table, sums, times),
        "networks": [{**row, "lut_sum_ms": float(s), "predicted_ms": float(p)}
                     for row, s, p in zip(measured, sums, predicted)],
    }
