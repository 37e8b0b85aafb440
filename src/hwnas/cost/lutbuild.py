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
    Engine, TimingSettings, TimingStats, check_same_engine, time_calls, time_interleaved,
)
from hwnas.cost.lut import LatencyTable, LutEntry, LutError, space_metadata
from hwnas.cost.opkey import OpKey, space_keys
from hwnas.spaces import get_space

LOGGER = logging.getLogger(__name__)

#: default timing of one operator key per round, and of whole networks per round
LAYER_TIMING = TimingSettings(warmup=10, repeats=50, rounds=3)
NETWORK_TIMING = TimingSettings(warmup=5, repeats=40, rounds=3)

#: ``on_progress(stage, done, total)``; stages: "keys", "export", "timing"
Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def open_table(path: Path, space: Any, engine: Engine, timing: TimingSettings) -> LatencyTable:
    """The table at ``path`` to resume (checked against this build), or a new empty one."""
    if not path.exists():
        return LatencyTable(space=space_metadata(space), engine=engine.metadata(), timing=timing,
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
                      *, tilts: Sequence[float] = (0.0,), pool_per_tilt: int = 300
                      ) -> list[ArchSpec]:
    """``count`` networks at evenly spaced ranks of the LUT sum over a random pool.

    The pool is sampled with per-layer candidate probabilities ``p ~ exp(tilt * z)`` (z = the
    candidate's standardised latency at that layer). The default, tilt 0 only, is the uniform
    distribution the validation networks come from: picking evenly spaced ranks from it spreads
    the calibration networks over that distribution's whole range (a well-determined scale)
    without extrapolating to extremes where the whole-network gap is not linear (on this machine
    the heaviest networks outgrow the caches a lone block enjoys). Negative/positive tilts add
    cheaper/heavier networks, for a calibration aimed at the corners a search visits.
    """
    if not hasattr(space, "layer_shapes"):  # not layer-wise (ChamNet): uniform pool, LUT sums
        pool_archs = list(dict.fromkeys(space.sample(rng) for _ in range(pool_per_tilt)))
        order = np.argsort([table.raw_sum(arch) for arch in pool_archs])
        picks = np.unique(np.linspace(0, len(pool_archs) - 1, min(count, len(pool_archs)))
                          .round().astype(int))
        return [pool_archs[order[index]] for index in picks]
    _, matrix = table.raw_layer_matrix(space)
    spread = matrix.std(axis=1, keepdims=True)
    z = (matrix - matrix.mean(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0)
    pool: list[tuple[int, ...]] = []
    for tilt in tilts:
        weights = np.exp(tilt * z)
        probabilities = weights / weights.sum(axis=1, keepdims=True)
        for _ in range(pool_per_tilt):
            pool.append(tuple(int(rng.choice(space.num_candidates, p=row))
                              for row in probabilities))
    pool = list(dict.fromkeys(pool))
    sums = [matrix[np.arange(space.num_layers), list(choices)].sum() for choices in pool]
    order = np.argsort(sums)
    picks = np.unique(np.linspace(0, len(pool) - 1, min(count, len(pool))).round().astype(int))
    return [space.to_arch(pool[order[index]]) for index in picks]


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


def build_lut(space_name: str, engine: Engine, path: str | Path, *,
              timing: TimingSettings = LAYER_TIMING, calibration_networks: int = 12,
              calibration_seed: int = 1, network_timing: TimingSettings = NETWORK_TIMING,
              recalibrate: bool = False, on_progress: Progress = _no_progress,
              throttle_s: float = 0.0) -> LatencyTable:
    """Build (or resume) the LUT of ``space_name`` on ``engine`` at ``path``; see module doc."""
    path = Path(path)
    space = get_space(space_name)
    table = open_table(path, space, engine, timing)
    keys = space_keys(space)
    already = sum(min(table.measured_rounds(key), timing.rounds) for key in keys)
    LOGGER.info("%s: %d keys x %d rounds, %d measurements already stored", path, len(keys),
                timing.rounds, already)
    measure_keys(table, keys, engine, path, on_progress=on_progress, throttle_s=throttle_s)
    if calibration_networks > 0 and (table.calibration is None or recalibrate):
        calibrate(table, space, engine, count=calibration_networks, seed=calibration_seed,
                  timing=network_timing, on_progress=on_progress)
        table.save(path)
    return table
