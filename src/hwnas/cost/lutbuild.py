"""Build a latency table for a space, resumably, and calibrate it on whole networks.

``build_lut`` enumerates the unique operator keys of a space (:func:`~hwnas.cost.opkey.space_keys`)
and measures each in ``timing.rounds`` interleaved rounds (all keys once, then all keys again...).
After *every* measurement the table is written atomically, so a killed build loses at most the
measurement in flight. Run again with the same output file, it reloads the table, checks that the
space, engine and timing settings are the same (refusing otherwise, naming both), and measures
exactly the (key, round) pairs that are missing: no stored measurement is lost or repeated.

Then, unless disabled, it measures a few *calibration* networks end to end (interleaved rounds,
same process, same engine) and fits ``scale * sum + offset`` (:mod:`hwnas.cost.calibration`). The
calibration networks are chosen to span the space's latency range (see
:func:`calibration_archs`) and are never used for validation.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hwnas.arch.spec import ArchSpec
from hwnas.cost.calibration import fit_calibration
from hwnas.cost.engines import (
    Engine, TimingSettings, TimingStats, check_same_engine, make_engine, time_calls,
    time_interleaved,
)
from hwnas.cost.lut_config import LutBuildConfig
from hwnas.cost.lut import LatencyTable, LutEntry, LutError
from hwnas.cost.opkey import OpKey, space_keys
from hwnas.spaces import get_space

LOGGER = logging.getLogger(__name__)

#: the default timing of whole networks per round (:class:`LutBuildConfig`'s)
NETWORK_TIMING = TimingSettings(warmup=5, repeats=40, rounds=3)

#: ``on_progress(stage, done, total)``; stages: "keys", "export", "timing"
Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def open_table(path: Path, space: Any, engine: Engine, timing: TimingSettings) -> LatencyTable:
    """The table at ``path`` to resume (checked against this build), or a new empty one."""
    if not path.exists():
        return LatencyTable(space=space.lut_metadata(), engine=engine.metadata(), timing=timing,
                            source=str(path))
    table = LatencyTable.load(path)
    if table.space_name != space.name or table.resolution != space.resolution:
        raise LutError(f"cannot resume {table.describe()} as a build for space {space.name} at "
                       f"{space.resolution} px: use another --out")
    check_same_engine(table.engine, engine.metadata(), f"cannot resume {table.describe()}")
    if table.timing != timing:
        raise LutError(f"cannot resume {table.describe()}: it was started with timing "
                       f"{table.timing.to_dict()}, this build asks for {timing.to_dict()}")
    return table


def pending_measurements(table: LatencyTable, keys: Sequence[OpKey]) -> list[tuple[int, OpKey]]:
    """The (round, key) pairs still to measure, round by round."""
    return [(round_index, key) for round_index in range(table.timing.rounds) for key in keys
            if table.measured_rounds(key) <= round_index]


def measure_keys(table: LatencyTable, keys: Sequence[OpKey], engine: Engine, path: Path, *,
                 on_progress: Progress = _no_progress, throttle_s: float = 0.0) -> int:
    """Measure every missing (key, round), saving the table after each; returns how many."""
    pending = pending_measurements(table, keys)
    runners: dict[OpKey, Callable[[], Any]] = {}
    on_progress("keys", 0, len(pending))
    for done, (_, key) in enumerate(pending, start=1):
        if key not in runners:
            runners[key] = engine.layer_runner(key.layer_shape())
        stats = time_calls(runners[key], warmup=table.timing.warmup, repeats=table.timing.repeats)
        table.entries.setdefault(key, LutEntry(key)).rounds.append(stats)
        table.save(path)
        on_progress("keys", done, len(pending))
        if throttle_s:
            time.sleep(throttle_s)  # only for tests of interrupted builds
    return len(pending)


def calibration_archs(table: LatencyTable, space: Any, count: int, rng: np.random.Generator,
                      *, pool_size: int = 300) -> list[ArchSpec]:
    """``count`` networks at evenly spaced ranks of the LUT sum over ``pool_size`` uniformly
    random ones: spread over the whole range of the distribution the validation networks come
    from (a well-determined scale), without extrapolating to extremes where the whole-network
    gap is not linear (the heaviest networks outgrow the caches a lone block enjoys)."""
    pool = np.unique(space.decisions.sample(pool_size, rng), axis=0)
    sums = space.layer_sums(table.layer_price(space).price)(pool)
    picks = np.unique(np.linspace(0, len(pool) - 1, min(count, len(pool))).round().astype(int))
    return [space.to_arch(pool[index]) for index in np.argsort(sums, kind="stable")[picks]]


def measure_networks(archs: Sequence[ArchSpec], engine: Engine, timing: TimingSettings, *,
                     chunk_size: int = 20, on_progress: Progress = _no_progress
                     ) -> list[TimingStats]:
    """End-to-end latency of each network: interleaved rounds within chunks of ``chunk_size``
    networks (bounding how many compiled networks are held in memory at once)."""
    results: list[TimingStats] = []
    total_rounds = timing.rounds * len(archs)
    on_progress("export", 0, len(archs))
    on_progress("timing", 0, total_rounds)
    for start in range(0, len(archs), chunk_size):
        chunk = archs[start:start + chunk_size]
        runners = []
        for arch in chunk:
            runners.append(engine.network_runner(arch))
            on_progress("export", start + len(runners), len(archs))
        base = timing.rounds * start

        def report_round(round_index: int, base: int = base, size: int = len(chunk)) -> None:
            on_progress("timing", base + (round_index + 1) * size, total_rounds)

        results.extend(time_interleaved(runners, timing, on_round=report_round))
    return results


def calibrate(table: LatencyTable, space: Any, engine: Engine, *, count: int, seed: int,
              timing: TimingSettings = NETWORK_TIMING,
              on_progress: Progress = _no_progress) -> None:
    """Measure ``count`` calibration networks and store the fitted correction in ``table``."""
    archs = calibration_archs(table, space, count, np.random.default_rng(seed))
    sums = [table.raw_sum(arch) for arch in archs]
    measured = [stats.median_ms for stats in
                measure_networks(archs, engine, timing, on_progress=on_progress)]
    settings = {"networks": len(archs), "seed": seed, "timing": timing.to_dict(),
                "selection": "evenly spaced ranks of the LUT sum over 300 uniform random networks"}
    table.calibration = fit_calibration(sums, measured, [a.to_string() for a in archs], settings)


def engine_of(config: LutBuildConfig) -> Engine:
    """The engine a table of ``config`` is measured with."""
    return make_engine(config.engine, threads=config.threads, layout=config.layout)


def build_lut(config: LutBuildConfig, path: str | Path, *, recalibrate: bool = False,
              on_progress: Progress = _no_progress, throttle_s: float = 0.0) -> LatencyTable:
    """Build (or resume) the LUT ``config`` describes at ``path``; see the module docstring."""
    path = Path(path)
    space, engine, timing = get_space(config.space, "lut"), engine_of(config), config.timing
    table = open_table(path, space, engine, timing)
    keys = space_keys(space)
    already = sum(min(table.measured_rounds(key), timing.rounds) for key in keys)
    LOGGER.info("%s: %d keys x %d rounds, %d measurements already stored", path, len(keys),
                timing.rounds, already)
    measure_keys(table, keys, engine, path, on_progress=on_progress, throttle_s=throttle_s)
    if config.calibration > 0 and (table.calibration is None or recalibrate):
        calibrate(table, space, engine, count=config.calibration, seed=config.calibration_seed,
                  timing=config.network_timing, on_progress=on_progress)
        table.save(path)
    return table
