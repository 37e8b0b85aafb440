"""Session-robust timing: many fresh sessions over several worker processes, and a two-way fit.

A latency measured in one session of one process carries that session's and that process's
speed offset and whatever the machine was doing in those seconds (docs/reference.md section 5:
+-10-20 % between sessions and processes, episodes of a 25-30 % faster or slower machine that last
seconds to minutes). This module measures every item (an operator of a LUT, a network) in
``processes x sessions`` fresh sessions: ``processes`` worker processes (:mod:`hwnas.cost.worker`)
started one after another, each timing every item once per session, in a seeded random order cut
into blocks of ``block_size`` items timed back to back.

The session medians are then fitted by a two-way model in log space,

    log t[i, b] = mu_i + beta_b + e[i, b],

item ``i``, block ``b``: ``beta_b`` is how fast the machine ran during block ``b`` (shared by the
items timed in it, seconds apart), ``mu_i`` the item's latency. The fit is Tukey's median polish
(alternating medians; robust to single slow sessions), its block effects centred on their median
block. Latencies are then reported at the machine's *fast* speed, ``exp(mu_i + q)`` with ``q``
the :data:`FAST_QUANTILE` quantile of the block effects: interference (other tenants of a VM's
host, steal, other processes) only ever slows a machine down, and where it comes and goes the
block speeds are bimodal, so their median flips between the modes from run to run while the fast
blocks stay put (benchmarks/RESULTS.md, "Session-robust timing": the anchor of the fast blocks
took the drift between a build and its validation from -17 % to +2 %). The anchor moves every
item alike, so ranks do not depend on it. Per item the robust spread of ``e`` (1.4826 x MAD,
percent) is recorded; per run the spread of ``beta``, the blocks more than 10 % off the median
block (:mod:`hwnas.cost.health`) and how far the fast blocks ran ahead of the median one.

How many processes and sessions are enough was measured with ``python -m
benchmarks.experiments.timing_spread`` (benchmarks/RESULTS.md, "Timing spread").
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from hwnas.cost.health import OFF_SPEED_PCT, Monitor
from hwnas.cost.timing import check_count
from hwnas.errors import HwnasError

#: ``on_progress(stage, done, total)``; stages: "export", "timing"
Progress = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class SessionPlan:
    """How many worker processes, sessions per process and items per block."""

    processes: int = 4
    sessions: int = 2
    block_size: int = 20

    def __post_init__(self) -> None:
        check_count("processes", self.processes, 1)
        check_count("sessions", self.sessions, 1)
        check_count("block_size", self.block_size, 1)


@dataclass(frozen=True)
class Item:
    """One thing to time: its name in the results and its worker plan entry."""

    name: str
    plan: dict[str, Any]


def layer_items(engine: Any, keys: Iterable[Any], folder: Path, *, warmup: int, repeats: int,
                on_progress: Progress = no_progress, total: int = 0) -> list[Item]:
    """Items timing each operator key's layer (graphs exported into ``folder`` for ORT)."""
    return [Item(key.id, {"name": key.id, "warmup": warmup, "repeats": repeats,
                          **engine.layer_item(key, folder)})
            for key in _counted(keys, on_progress, total)]


def network_items(engine: Any, archs: Iterable[Any], folder: Path, *, warmup: int,
                  repeats: int, on_progress: Progress = no_progress, total: int = 0,
                  done: int = 0) -> list[Item]:
    """Items timing each network end to end, named by their architecture strings."""
    return [Item(arch.to_string(), {"name": arch.to_string(), "warmup": warmup,
                                    "repeats": repeats, **engine.network_item(arch, folder)})
            for arch in _counted(archs, on_progress, total, done)]


def _counted(things: Iterable[Any], on_progress: Progress, total: int, done: int = 0
             ) -> Iterable[Any]:
    for index, thing in enumerate(things, start=done + 1):
        yield thing
        on_progress("export", index, total)


def run_processes(items: Sequence[Item], engine: Any, plan: SessionPlan, processes: Sequence[int],
                  *, seed: int, on_done: Callable[[int, list[dict[str, Any]]], None],
                  monitor: Monitor, on_progress: Progress = no_progress,
                  label: Callable[[int], str] = lambda index: f"process {index + 1}") -> None:
    """Run one worker per index in ``processes``, one after another; ``on_done(index, rows)``
    receives each worker's measurements as soon as it ends (so a caller can save them)."""
    if not items:
        return
    blocks_per_process = plan.sessions * -(-len(items) // plan.block_size)
    total, finished = blocks_per_process * len(processes), 0
    on_progress("timing", 0, total)
    with tempfile.TemporaryDirectory(prefix="hwnas-timing-") as folder:
        for index in processes:
            worker_plan = {"engine": engine.plan(), "process": index, "seed": seed,
                           "sessions": plan.sessions, "block_size": plan.block_size,
                           "items": [item.plan for item in items]}
            plan_path, out_path = Path(folder, f"plan-{index}.json"), Path(folder, f"{index}.json")
            plan_path.write_text(json.dumps(worker_plan))
            monitor.start()
            rows = _run_worker(plan_path, out_path, lambda done: on_progress(
                "timing", finished + done, total))
            monitor.stop(label(index))
            finished += blocks_per_process
            on_done(index, rows)


def _run_worker(plan_path: Path, out_path: Path, on_block: Callable[[int], None]
                ) -> list[dict[str, Any]]:
    command = [sys.executable, "-m", "hwnas.cost.worker", str(plan_path), str(out_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as worker:
        assert worker.stdout is not None
        for line in worker.stdout:
            if line.startswith("block "):
                on_block(int(line.split()[1].split("/")[0]))
        errors = worker.stderr.read() if worker.stderr else ""
    if worker.returncode != 0 or not out_path.exists():
        last = errors.strip().splitlines()[-1] if errors.strip() else "no message"
        raise HwnasError(f"a timing worker failed (exit {worker.returncode}): {last}")
    return json.loads(out_path.read_text())["measurements"]


@dataclass(frozen=True)
class LatencyFit:
    """The two-way fit of session medians (module doc)."""

    latency_ms: dict[str, float]
    spread_pct: dict[str, float]
    sessions: dict[str, int]
    block_effect_pct: dict[str, float]
    fast_speed_pct: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The machine's speed over the run: spread of the block effects, blocks off."""
        effects = np.array(list(self.block_effect_pct.values()))
        spreads = np.array(list(self.spread_pct.values()))
        return {"blocks": int(effects.size),
                "blocks_off": int(np.sum(np.abs(effects) > OFF_SPEED_PCT)),
                "block_spread_pct": _robust_sd(effects) if effects.size else None,
                "fastest_block_pct": float(effects.min()) if effects.size else None,
                "slowest_block_pct": float(effects.max()) if effects.size else None,
                "median_item_spread_pct": float(np.median(spreads)) if spreads.size else None,
                "fast_speed_pct": self.fast_speed_pct}


#: latencies are given at this quantile of the block speeds, the machine's fast speed (module doc)
FAST_QUANTILE = 0.1


def fit_latencies(rows: Sequence[dict[str, Any]], iterations: int = 50) -> LatencyFit:
    """Median polish of ``log(median_ms)`` over items and blocks (module doc)."""
    if not rows:
        raise HwnasError("cannot fit latencies to zero measurements")
    names = sorted({row["item"] for row in rows})
    blocks = sorted({row["block"] for row in rows})
    item_index, block_index = _index(names), _index(blocks)
    item_of = np.array([item_index[row["item"]] for row in rows])
    block_of = np.array([block_index[row["block"]] for row in rows])
    values = np.log(np.array([row["median_ms"] for row in rows], dtype=float))
    mu = _group_median(values, item_of, len(names))
    beta = np.zeros(len(blocks))
    for _ in range(iterations):
        beta = _group_median(values - mu[item_of], block_of, len(blocks))
        beta -= np.median(beta)
        updated = _group_median(values - beta[block_of], item_of, len(names))
        converged = np.max(np.abs(updated - mu)) < 1e-10
        mu = updated
        if converged:
            break
    residuals = values - mu[item_of] - beta[block_of]
    spread = {name: 100.0 * _robust_sd(residuals[item_of == index])
              for index, name in enumerate(names)}
    counts = np.bincount(item_of, minlength=len(names))
    fast = float(np.quantile(beta, FAST_QUANTILE))
    return LatencyFit({name: float(np.exp(mu[index] + fast)) for index, name in enumerate(names)},
                      spread, {name: int(counts[index]) for index, name in enumerate(names)},
                      {block: 100.0 * float(np.expm1(beta[index]))
                       for index, block in enumerate(blocks)}, 100.0 * float(np.expm1(fast)))


def _index(names: Sequence[str]) -> dict[str, int]:
    return {name: index for index, name in enumerate(names)}


def _group_median(values: np.ndarray, groups: np.ndarray, count: int) -> np.ndarray:
    members: dict[int, list[float]] = defaultdict(list)
    for group, value in zip(groups.tolist(), values.tolist()):
        members[group].append(value)
    return np.array([float(np.median(members[group])) if members[group] else 0.0
                     for group in range(count)])


def _robust_sd(values: np.ndarray) -> float:
    """1.4826 x the median absolute deviation (the sd of a normal sample, robustly)."""
    if values.size < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def relative_drift(now: dict[str, float], then: dict[str, float]) -> float | None:
    """Median percent change of the items in both (reference networks then and now)."""
    shared = sorted(set(now) & set(then))
    if not shared:
        return None
    return 100.0 * float(np.median([now[name] / then[name] - 1.0 for name in shared]))
