"""Build a latency table for a space with session-robust timing, resumably, and calibrate it.

``build_lut`` times every unique operator key of a space (:func:`~hwnas.cost.opkey.space_keys`)
in ``processes`` worker processes of ``sessions`` fresh sessions each
(:mod:`hwnas.cost.sessions`), then a few *calibration* networks (:func:`calibration_archs`) and
more uniformly random *correction* networks (:func:`random_archs`) in ``processes`` worker
processes of their own. The networks are timed alone, the way a validation,
a demo or a user times a network: timed in the layers' processes, among the layers, the same
networks ran 5-9 % faster (benchmarks/RESULTS.md, "Session-robust timing"), a bias every later
comparison would inherit. Layers and networks are fitted apart, each at the machine's fast speed.

After every worker process the table is written atomically with that process's sessions, so a
killed build loses at most one process's work. Run again with the same output file, it reloads
the table, checks that the space, engine and measurement settings are the same (refusing
otherwise, naming both) and runs only the processes that are missing: layer processes are
numbered ``0 .. processes - 1``, network processes ``processes .. 2 processes - 1``.

Once all processes are in, the fits give every entry's latency and every network's;
``scale * sum + offset`` is fitted to all networks (:mod:`hwnas.cost.calibration`), then a
per-key correction to the same networks (:mod:`hwnas.cost.correction`). The calibration
networks' latencies are stored as the table's *references*: a later validation, or a demo, times
them again to see whether the machine has drifted since (:mod:`hwnas.cost.health`). Networks
timed in a build are never used for validation.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hwnas.arch.spec import ArchSpec
from hwnas.cost.calibration import fit_calibration
from hwnas.cost.correction import fit_key_correction
from hwnas.cost.engines import Engine, check_same_engine, make_engine
from hwnas.cost.flops import FlopsCost
from hwnas.cost.health import Monitor, Warn, log_warning
from hwnas.cost.lut import LatencyTable, LutEntry, LutError
from hwnas.cost.lut_config import LutBuildConfig, TimingSettings
from hwnas.cost.opkey import OpKey, op_keys, space_keys
from hwnas.cost.sessions import (
    LatencyFit, Progress, SessionPlan, fit_latencies, layer_items, network_items, no_progress,
    relative_drift, run_processes,
)
from hwnas.spaces import get_space

LOGGER = logging.getLogger(__name__)


def calibration_archs(space: Any, count: int, rng: np.random.Generator, *,
                      pool_size: int = 300) -> list[ArchSpec]:
    """``count`` networks at evenly spaced ranks of MFLOPs over ``pool_size`` uniformly random
    ones: spread over the range of the distribution the validation networks come from (a
    well-determined scale) without extremes. MFLOPs, because the networks are timed with the
    layers, before any latency is known."""
    pool = np.unique(space.decisions.sample(pool_size, rng), axis=0)
    sums = space.layer_sums(FlopsCost().layer_price(space).price)(pool)
    picks = np.unique(np.linspace(0, len(pool) - 1, min(count, len(pool))).round().astype(int))
    return [space.to_arch(pool[index]) for index in np.argsort(sums, kind="stable")[picks]]


def random_archs(space: Any, count: int, rng: np.random.Generator, exclude: set[str]
                 ) -> list[ArchSpec]:
    """``count`` distinct uniformly random networks whose strings are not in ``exclude``: the
    distribution a validation, and a search's first samples, come from (the correction
    networks, and a validation's)."""
    archs: dict[str, ArchSpec] = {}
    while len(archs) < count:  # collisions are rare in a large space; the loop ends quickly
        for row in space.decisions.sample(count - len(archs), rng):
            arch = space.to_arch(row)
            if arch.to_string() not in exclude:
                archs.setdefault(arch.to_string(), arch)
    return list(archs.values())


def key_contributions(table: LatencyTable, keys: Sequence[OpKey], archs: Sequence[ArchSpec]
                      ) -> np.ndarray:
    """networks x keys: each key's count in the network times its measured latency."""
    column = {key: index for index, key in enumerate(keys)}
    matrix = np.zeros((len(archs), len(keys)))
    for row, arch in enumerate(archs):
        for key in op_keys(arch):
            matrix[row, column[key]] += table.entries[key].latency_ms
    return matrix


def open_table(path: Path, space: Any, engine: Engine, config: LutBuildConfig) -> LatencyTable:
    """The table at ``path`` to resume (checked against this build), or a new empty one."""
    if not path.exists():
        return LatencyTable(space=space.lut_metadata(), engine=engine.metadata(),
                            timing=config.measurement(), source=str(path))
    table = LatencyTable.load(path)
    if table.version != 2:
        raise LutError(f"cannot resume {table.describe()}: it is a format-{table.version} table "
                       f"of an older hwnas; build a new one with another --out")
    if table.space_name != space.name or table.resolution != space.resolution:
        raise LutError(f"cannot resume {table.describe()} as a build for space {space.name} at "
                       f"{space.resolution} px: use another --out")
    check_same_engine(table.engine, engine.metadata(), f"cannot resume {table.describe()}")
    if table.timing != config.measurement():
        raise LutError(f"cannot resume {table.describe()}: it was started with "
                       f"{table.timing}, this build asks for {config.measurement()}")
    return table


def engine_of(config: LutBuildConfig) -> Engine:
    """The engine a table of ``config`` is measured with."""
    return make_engine(config.engine, threads=config.threads, layout=config.layout)


def build_lut(config: LutBuildConfig, path: str | Path, *, recalibrate: bool = False,
              on_progress: Progress = no_progress, on_warning: Warn = log_warning,
              throttle_s: float = 0.0) -> LatencyTable:
    """Build (or resume) the LUT ``config`` describes at ``path``; see the module docstring.
    ``recalibrate`` refits the stored sessions (nothing is timed again); ``throttle_s`` sleeps
    after each worker process (tests of interrupted builds)."""
    path = Path(path)
    space, engine = get_space(config.space, "lut"), engine_of(config)
    table = open_table(path, space, engine, config)
    keys = space_keys(space)
    archs = calibration_archs(space, config.calibration,
                              np.random.default_rng(config.calibration_seed))
    extra = random_archs(space, config.correction,
                         np.random.default_rng([config.calibration_seed, 1]),
                         {arch.to_string() for arch in archs})
    processes = config.processes
    every = range(2 * processes if archs or extra else processes)
    pending = [index for index in every if index not in table.build.processes_done]
    LOGGER.info("%s: %d keys and %d networks, %d of %d processes to run", path, len(keys),
                len(archs) + len(extra), len(pending), len(every))
    if pending:
        monitor = Monitor("the LUT build", on_warning)
        monitor.before(config.wait_quiet)
        with tempfile.TemporaryDirectory(prefix="hwnas-graphs-") as folder:
            total = len(keys) + len(archs) + len(extra)
            layers = layer_items(engine, keys, Path(folder), **config.timing.to_dict(),
                                 on_progress=on_progress, total=total)
            networks = network_items(engine, [*archs, *extra], Path(folder),
                                     **config.network_timing.to_dict(),
                                     on_progress=on_progress, total=total, done=len(keys))
            by_id = {key.id: table.entries.setdefault(key, LutEntry(key)) for key in keys}

            def store(index: int, rows: list[dict[str, Any]]) -> None:
                for row in rows:
                    if row["item"] in by_id:
                        by_id[row["item"]].sessions.append(row)
                    else:
                        table.build.networks.setdefault(row["item"], []).append(row)
                table.build.processes_done.append(index)
                table.save(path)
                if throttle_s:
                    time.sleep(throttle_s)

            for items, indices, kind in (
                    (layers, [i for i in pending if i < processes], "layers"),
                    (networks, [i for i in pending if i >= processes], "networks")):
                if indices:
                    run_processes(items, engine, config.plan, indices,
                                  seed=config.calibration_seed, on_done=store, monitor=monitor,
                                  on_progress=on_progress,
                                  label=lambda index, kind=kind: (
                                      f"process {index % processes + 1}/{processes} ({kind})"))
        fit_table(table, keys, archs, extra, monitor)
        table.build.conditions.append(monitor.summary())
        table.save(path)
    elif recalibrate:
        fit_table(table, keys, archs, extra, Monitor("the LUT build", on_warning))
        table.save(path)
    return table


def fit_table(table: LatencyTable, keys: Sequence[OpKey], archs: Sequence[ArchSpec],
              extra: Sequence[ArchSpec], monitor: Monitor) -> LatencyFit:
    """Fit the stored sessions, layers and networks apart, and set the entries' latencies, the
    references (the calibration networks ``archs``), the calibration and the per-key
    correction (both fitted to ``archs`` and the correction networks ``extra``); returns the
    layers' fit."""
    fit = fit_latencies([row for key in keys for row in table.entries[key].sessions])
    for key in keys:
        entry = table.entries[key]
        entry.latency_ms, entry.spread_pct = fit.latency_ms[key.id], fit.spread_pct[key.id]
        entry.correction = 0.0
    table.build.speed = fit.summary()
    monitor.speed(table.build.speed)
    timed = [*archs, *extra]
    network_rows = [row for arch in timed
                    for row in table.build.networks.get(arch.to_string(), [])]
    table.correction = None  # the entries' corrections were just reset
    if not network_rows:
        return fit
    networks = fit_latencies(network_rows)
    monitor.speed(networks.summary(), key="reference_speed")
    table.build.references = {arch.to_string(): networks.latency_ms[arch.to_string()]
                              for arch in archs}
    names = [arch.to_string() for arch in timed]
    measured = np.array([networks.latency_ms[name] for name in names])
    settings = {"networks": len(timed), "seed": table.timing["calibration_seed"],
                "selection": f"{len(archs)} at evenly spaced ranks of MFLOPs over 300 uniform "
                             f"random networks, {len(extra)} uniform random",
                "timed": "alone, in processes of their own"}
    table.calibration = fit_calibration([table.raw_sum(arch) for arch in timed], measured,
                                        names, settings)
    if extra:
        corrections, table.correction = fit_key_correction(
            key_contributions(table, keys, timed), measured, table.scale, table.offset_ms)
        for key, value in zip(keys, corrections):
            table.entries[key].correction = float(value)
    return fit


@dataclass(frozen=True)
class NetworkTimes:
    """End-to-end times of networks: one fit per group of processes and one of all groups."""

    groups: list[LatencyFit]
    together: LatencyFit

    def latency_ms(self, arch: ArchSpec) -> float:
        return self.together.latency_ms[arch.to_string()]

    def drift_pct(self, then: dict[str, float]) -> float | None:
        """How much slower (+) or faster the networks of ``then`` (a table's references) ran
        now than then: the median percent change (None when none was timed)."""
        return relative_drift(self.together.latency_ms, then)


def measure_networks(archs: Sequence[ArchSpec], engine: Engine, timing: TimingSettings,
                     plan: SessionPlan, *, monitor: Monitor, seed: int = 0,
                     references: Sequence[ArchSpec] = (), groups: int = 1,
                     done: dict[int, list[dict[str, Any]]] | None = None,
                     on_done: Callable[[int, list[dict[str, Any]]], None] | None = None,
                     on_progress: Progress = no_progress) -> NetworkTimes:
    """Time ``archs`` (and ``references``, e.g. a table's calibration networks) end to end in
    ``groups`` independent groups of ``plan.processes`` worker processes; the groups take turns
    process by process (process ``i`` belongs to group ``i % groups``). ``done`` holds the
    sessions of processes run before (a resumed run), ``on_done`` receives each new one's."""
    every = list({arch.to_string(): arch for arch in [*archs, *references]}.values())
    rows_by_process = dict(done or {})
    pending = [index for index in range(groups * plan.processes) if index not in rows_by_process]
    if pending:
        with tempfile.TemporaryDirectory(prefix="hwnas-graphs-") as folder:
            items = network_items(engine, every, Path(folder), **timing.to_dict(),
                                  on_progress=on_progress, total=len(every))

            def store(index: int, rows: list[dict[str, Any]]) -> None:
                rows_by_process[index] = rows
                if on_done is not None:
                    on_done(index, rows)

            run_processes(items, engine, plan, pending, seed=seed, on_done=store,
                          monitor=monitor, on_progress=on_progress,
                          label=lambda index: f"process {index + 1}/{groups * plan.processes}")
    fits = [fit_latencies([row for index, rows in rows_by_process.items()
                           if index % groups == group for row in rows])
            for group in range(groups)]
    together = fits[0] if groups == 1 else fit_latencies(
        [row for rows in rows_by_process.values() for row in rows])
    monitor.speed(together.summary())
    return NetworkTimes(fits, together)
