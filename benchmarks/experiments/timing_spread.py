"""How many worker processes and fresh sessions does a latency need to repeat within +-10 %?

Method: ``networks`` uniformly random networks and ``layers`` random operator keys of the FBNet
CIFAR space are timed together in ``processes`` worker processes of ``sessions`` fresh sessions
each (:func:`hwnas.cost.sessions.run_processes`: one worker at a time, every item once per
session in a seeded random order cut into blocks of ``block_size``). From these sessions, for
``p`` processes and ``s`` sessions per process, two *disjoint* groups of ``p`` processes are
drawn ``draws`` times; each group's latencies are estimated from its first ``s`` sessions, by
the two-way fit (:func:`hwnas.cost.sessions.fit_latencies`, at the machine's fast speed) and,
for comparison, by the same fit anchored on the median block (``fit-median-block``) and by the
plain median of the session medians. Reported per (p, s) and estimator, for networks and layers
apart: the share of items whose two estimates agree within +-10 % and +-5 %, and Kendall's tau
between the two groups (the noise ceiling a table validated with that plan can reach). Also the
spread of the machine's speed (the fit's block effects) and the conditions of the run.
Settings: ``configs/benchmarks/timing_spread.yaml``. Run it alone::

    python -m benchmarks.experiments.timing_spread                    # ort-1t, about 3 minutes
    python -m benchmarks.experiments.timing_spread --engine torch-1t
    python -m benchmarks.experiments.timing_spread --quick
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy.stats import kendalltau

from benchmarks.experiments import common
from benchmarks.experiments.lut_fidelity import engine_config
from hwnas import settings
from hwnas.cost.health import Monitor
from hwnas.cost.lut_config import LutBuildConfig
from hwnas.cost.lutbuild import engine_of
from hwnas.cost.opkey import space_keys
from hwnas.cost.sessions import (
    SessionPlan, fit_latencies, layer_items, network_items, run_processes,
)
from hwnas.settings import check
from hwnas.spaces import get_space

NAME = "timing_spread"


@dataclass(frozen=True, kw_only=True)
class SpreadConfig:
    """The ``benchmark`` section of ``configs/benchmarks/timing_spread.yaml``."""

    engine: str = common.required("Engine label, <ort|torch>-<threads>t.")
    networks: int = common.required("Random networks timed.", minimum=2)
    layers: int = common.required("Random operator keys timed.", minimum=0)
    processes: int = common.required("Worker processes (an even number: two groups).",
                                     minimum=2)
    sessions: int = common.required("Fresh sessions per item and process.", minimum=1)
    group_processes: tuple[int, ...] = common.required("Processes per group compared.")
    group_sessions: tuple[int, ...] = common.required("Sessions per process compared.")
    draws: int = common.required("Random pairs of disjoint groups per combination.",
                                 minimum=1)
    seed: int = common.required("Seed of the networks, keys, orders and draws.", minimum=0)

    def __post_init__(self) -> None:
        check(self)


ESTIMATORS = ("fit", "fit-median-block", "median")


def estimate(rows: Sequence[dict[str, Any]], method: str) -> dict[str, float]:
    """Each item's latency from ``rows``: the two-way fit (at the machine's fast speed, or
    anchored on the median block as a comparison) or the plain median of the sessions."""
    if method != "median":
        fit = fit_latencies(rows)
        factor = 1.0 if method == "fit" else 1.0 / (1.0 + fit.fast_speed_pct / 100.0)
        return {name: value * factor for name, value in fit.latency_ms.items()}
    values: dict[str, list[float]] = {}
    for row in rows:
        values.setdefault(row["item"], []).append(row["median_ms"])
    return {item: float(np.median(times)) for item, times in values.items()}


def agreement(first: dict[str, float], second: dict[str, float], names: Sequence[str]
              ) -> dict[str, float]:
    a = np.array([first[name] for name in names])
    b = np.array([second[name] for name in names])
    relative = np.abs(a / b - 1.0)
    return {"within_10pct": 100.0 * float(np.mean(relative <= 0.10)),
            "within_5pct": 100.0 * float(np.mean(relative <= 0.05)),
            "kendall": float(kendalltau(a, b)[0])}


def spread_table(rows: Sequence[dict[str, Any]], kinds: dict[str, list[str]],
                 own: SpreadConfig) -> list[dict[str, Any]]:
    """The agreement of two disjoint groups per (processes, sessions, estimator, kind)."""
    rng = np.random.default_rng(own.seed)
    table = []
    for processes in own.group_processes:
        if 2 * processes > own.processes:
            continue
        for sessions in own.group_sessions:
            if sessions > own.sessions:
                continue
            scores: dict[tuple[str, str], list[dict[str, float]]] = {}
            for _ in range(own.draws):
                order = rng.permutation(own.processes)
                groups = [set(order[:processes].tolist()),
                          set(order[processes:2 * processes].tolist())]
                chosen = [[row for row in rows if row["process"] in group
                           and row["session"] < sessions] for group in groups]
                for method in ESTIMATORS:
                    first, second = (estimate(group, method) for group in chosen)
                    for kind, names in kinds.items():
                        scores.setdefault((method, kind), []).append(
                            agreement(first, second, names))
            for (method, kind), values in scores.items():
                table.append({"processes": processes, "sessions": sessions,
                              "estimator": method, "items": kind,
                              **{key: float(np.mean([v[key] for v in values]))
                                 for key in ("within_10pct", "within_5pct", "kendall")}})
    return table


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(__doc__.split("\n\n")[0], NAME)
    parser.add_argument("--engine", default=None, help="engine label (default: the preset's)")
    arguments = parser.parse_args(argv)
    loaded, source = common.load_preset(NAME, {"lut_build": LutBuildConfig,
                                               "benchmark": SpreadConfig},
                                        quick=arguments.quick, path=arguments.config)
    own = loaded["benchmark"]
    label = arguments.engine or own.engine
    config = engine_config(loaded["lut_build"], label)
    engine = engine_of(config)
    started = time.perf_counter()
    space = get_space(config.space, "lut")
    rng = np.random.default_rng(own.seed)
    archs = list({arch.to_string(): arch for arch in (
        space.to_arch(row) for row in space.decisions.sample(own.networks, rng))}.values())
    all_keys = space_keys(space)
    keys = [all_keys[index] for index in
            rng.choice(len(all_keys), min(own.layers, len(all_keys)), replace=False)]
    monitor = Monitor("the spread experiment", lambda message: print(message, flush=True))
    monitor.before()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hwnas-spread-") as folder:
        items = layer_items(engine, keys, Path(folder), **config.timing.to_dict()) + \
            network_items(engine, archs, Path(folder), **config.network_timing.to_dict())
        plan = SessionPlan(processes=own.processes, sessions=own.sessions,
                           block_size=config.block_size)
        run_processes(items, engine, plan, list(range(own.processes)), seed=own.seed,
                      on_done=lambda index, done: rows.extend(done), monitor=monitor,
                      label=lambda index: f"process {index + 1}/{own.processes}")
    fit = fit_latencies(rows)
    monitor.speed(fit.summary())
    kinds = {"networks": [arch.to_string() for arch in archs],
             "layers": [key.id for key in keys]}
    kinds = {kind: names for kind, names in kinds.items() if len(names) >= 2}
    table = spread_table(rows, kinds, own)
    print(f"{label}: agreement of two disjoint groups (mean of {own.draws} draws)")
    print("processes sessions estimator items     within10 within5 kendall")
    for row in table:
        print(f"{row['processes']:>9} {row['sessions']:>8} {row['estimator']:>9} "
              f"{row['items']:>8} {row['within_10pct']:8.1f} {row['within_5pct']:7.1f} "
              f"{row['kendall']:7.3f}")
    output = {"engine": engine.metadata(), "label": label, "table": table,
              "speed": fit.summary(), "conditions": monitor.summary(),
              "median_item_spread_pct": {kind: float(np.median([fit.spread_pct[n]
                                                                for n in names]))
                                         for kind, names in kinds.items()},
              "settings": {"preset": source, "lut_build": settings.to_dict(config),
                           "benchmark": settings.to_dict(own)},
              "machine": common.machine()}
    return common.write_output(arguments.out, f"{NAME}-{label}", arguments.quick, output,
                               started)


if __name__ == "__main__":
    common.run(main)
