"""Validate a latency table against end-to-end measurements of random networks.

``validate_lut`` samples N uniformly random architectures of the table's space (seeded, never one
of the calibration networks), predicts each with the table, and measures each end to end with the
table's own engine in worker processes other than the build's (:mod:`hwnas.cost.sessions`):
``groups`` independent groups of ``processes`` workers, taking turns, each timing every network
in ``sessions`` fresh sessions. It reports, against the fit of all groups together,

* MAPE = mean_i |pred_i - meas_i| / meas_i (percent);
* the share of networks with |pred - meas| / meas <= 5 % and <= 10 % (percent);
* Spearman's rho and Kendall's tau between predicted and measured (rank fidelity, what a search
  needs); and the same numbers for the raw LUT sum and each fitted correction, for comparison;

and beside them

* the **noise ceiling**: the same numbers between two groups' fits, i.e. how well the machine
  reproduces its own measurements. A table cannot be checked more finely than that: when
  fidelity is near the ceiling the machine limits the prediction, not the table;
* the fidelity **at the machine's current speed**: every prediction times ``1 + drift``, the
  median change since the build of the table's calibration networks, timed in this run as
  references. A table predicts latency at the speed the machine had while it was built; the
  references say how much faster or slower the machine runs now, which is the machine's state,
  not the table's error (:mod:`hwnas.cost.health` warns about it and records the conditions).

Plus a predicted-vs-measured scatter plot (PNG).
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
from hwnas.cost.health import Monitor, Warn, log_warning
from hwnas.cost.lutbuild import NetworkTimes, measure_networks, random_archs
from hwnas.cost.sessions import Progress, no_progress
from hwnas.errors import HwnasError
from hwnas.runs import first_difference, open_run
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
    """``count`` distinct uniformly random architectures, none of them timed in the build."""
    excluded = set(table.build.networks) | (
        {point["arch"] for point in table.calibration.points} if table.calibration else set())
    return random_archs(space, count, np.random.default_rng(seed), excluded)


def _alternatives(table: LatencyTable, sums: np.ndarray, measured: np.ndarray) -> dict[str, Any]:
    """Fidelity of the raw sum and of every stored fit of it (no per-key correction), to show
    what the calibration and the correction buy."""
    result = {"raw_sum": fidelity_metrics(sums, measured)}
    if table.calibration:
        for method, fit in table.calibration.fits.items():
            predicted = fit["scale"] * sums + fit["offset_ms"]
            result[method] = fidelity_metrics(predicted, measured)
    return result


def validate_lut(table: LatencyTable, config: LutValidateConfig | None = None, *,
                 out_dir: str | Path | None = None, resume: bool = False,
                 label: str | None = None, on_progress: Progress = no_progress,
                 on_warning: Warn = log_warning) -> dict[str, Any]:
    """Measure ``config.n`` random networks of the table's space end to end and compare (module
    doc). With ``out_dir``, a run folder (:mod:`hwnas.runs`): ``history.jsonl`` holds every
    worker process's sessions (``resume`` runs only the missing processes), ``result.json`` the
    comparison and ``scatter.png`` the plot. Refuses when this machine's engine differs from the
    table's (CPU, version, ...)."""
    config = config or LutValidateConfig()
    started = time.perf_counter()
    space = get_space(table.space_name, "lut")
    table.check_space(space)
    if not table.is_complete(space):
        raise LutError(f"{table.describe()} is incomplete: run `hwnas lut build` again to finish")
    engine = engine_from_metadata(table.engine)
    check_same_engine(table.engine, engine.metadata(), f"cannot validate {table.describe()}")
    archs = validation_archs(table, space, config.n, config.seed)
    references = [ArchSpec.from_string(arch) for arch in table.build.references]
    folder = None if out_dir is None else open_run(
        out_dir, command="lut_validate", resume=resume, compare=_same_validation,
        config={"lut": table.source, "space": table.space, "engine": table.engine,
                "validate": settings.to_dict(config)})
    try:
        done = {row["process"]: row["measurements"]
                for row in (folder.read_history() if folder else [])}
        monitor = Monitor("the validation", on_warning)
        monitor.before(config.wait_quiet)
        times = measure_networks(
            archs, engine, config.timing, config.plan, monitor=monitor, seed=config.seed,
            references=references, groups=config.groups, done=done, on_progress=on_progress,
            on_done=None if folder is None else lambda index, rows: folder.append_history(
                [{"process": index, "measurements": rows}]))
        drift = times.drift_pct(table.build.references)
        monitor.drift(drift, "when the table was built")
        result = _comparison(table, archs, times, config, label or engine.label, drift)
        result.update(drift_pct=drift, conditions=monitor.summary(),
                      validate_s=time.perf_counter() - started)
        if folder is not None:
            title = (f"{result['label']}: MAPE {result['mape']:.1f} %, "
                     f"{result['within_10pct']:.0f} % within 10 %, tau "
                     + ("n/a" if result["kendall"] is None else f"{result['kendall']:.2f}"))
            predicted = [row["predicted_ms"] for row in result["networks"]]
            measured = [row["measured_ms"] for row in result["networks"]]
            result["plot"] = str(scatter_plot(predicted, measured, folder.path("scatter.png"),
                                              title))
            folder.write_result(result)
        return result
    finally:
        if folder is not None:
            folder.close()


def _same_validation(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    return first_difference({**saved, "validate": None}, {**current, "validate": None}) or \
        settings.resume_difference(LutValidateConfig, saved.get("validate"), current["validate"],
                                   "validate")


def _comparison(table: LatencyTable, archs: Sequence[ArchSpec], times: NetworkTimes,
                config: LutValidateConfig, label: str, drift_pct: float | None
                ) -> dict[str, Any]:
    sums = np.array([table.raw_sum(arch) for arch in archs])
    predicted = np.array([table.cost(arch) for arch in archs])
    measured = np.array([times.latency_ms(arch) for arch in archs])
    groups = [[fit.latency_ms[arch.to_string()] for arch in archs] for fit in times.groups]
    ceiling = None if len(groups) < 2 else fidelity_metrics(groups[0], groups[1])
    adjusted = None if drift_pct is None else \
        fidelity_metrics(predicted * (1.0 + drift_pct / 100.0), measured)
    return {
        **fidelity_metrics(predicted, measured),
        "at_current_speed": adjusted,
        "ceiling": ceiling,
        "per_group": [fidelity_metrics(predicted, values) for values in groups],
        "label": label, "lut": table.source, "space": table.space, "engine": table.engine,
        "seed": config.seed, "timing": config.timing.to_dict(),
        "plan": {"groups": config.groups, "processes": config.processes,
                 "sessions": config.sessions, "block_size": config.block_size},
        "prediction": {"method": table.calibration.method if table.calibration else "raw_sum",
                       "scale": table.scale, "offset_ms": table.offset_ms,
                       "correction": table.correction.to_dict() if table.correction else None},
        "alternatives": _alternatives(table, sums, measured),
        "networks": [{"arch": arch.to_string(), "measured_ms": float(m),
                      "group_ms": [float(values[index]) for values in groups],
                      "spread_pct": times.together.spread_pct[arch.to_string()],
                      "lut_sum_ms": float(s), "predicted_ms": float(p)}
                     for index, (arch, m, s, p) in enumerate(zip(archs, measured, sums,
                                                                   predicted))],
    }
