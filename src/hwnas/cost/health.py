"""Measurement health: is the machine quiet enough to time on, and was it quiet while timing?

Four signs of interference are watched, each turned into at most one warning line per run:

* **other processes' CPU use**: the CPU time all processors spent busy (``/proc/stat``: user,
  nice, system, irq, softirq) minus what this process and its timing workers used
  (``os.times``), per second of wall time, in cores;
* **steal time**: the share of CPU time the hypervisor gave to other guests (``/proc/stat``'s
  steal column), which slows a VM without showing up as load inside it;
* **an unsteady machine**, which the counters cannot see (another tenant of the host sharing a
  core's caches or its sibling hyperthread): a fixed probe (an element-wise multiply-add of
  65,536 floats, single-threaded numpy) is timed in eight windows of a quarter second; on a
  steady machine the windows' medians agree within a few percent, on an unsteady one they swing
  by more than :data:`SWING` (docs/reference.md section 5);
* **speed changes and noise seen in the timings themselves**: the block effects of the
  two-way fit (:func:`hwnas.cost.sessions.fit_latencies`) say how far each block of timings ran
  from the machine's typical speed, and reference networks timed again say how far the machine
  has drifted since a table was built.

The thresholds are the module constants below. They are set against this project's 2-core VM,
where a lone timing worker keeps other use under 0.1 core and a second busy process shows as
about 1 core (docs/reference.md section 5). Without ``/proc/stat`` (not Linux) the CPU checks
report ``None`` and never warn. Every LUT and validation result stores :meth:`Monitor.summary`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

LOGGER = logging.getLogger(__name__)

#: other processes' use, in cores, above which timings are flagged
BUSY_CORES = 0.25
#: steal time, percent of CPU time, above which timings are flagged
STEAL_PCT = 5.0
#: a block of timings more than this far from the typical speed counts as off ...
OFF_SPEED_PCT = 10.0
#: ... and more than this share of blocks off is flagged
OFF_BLOCKS_PCT = 10.0
#: a reference drift beyond this (percent) is flagged
DRIFT_PCT = 5.0
#: the probe's windows swinging more than this (max / min of their medians) is unsteady
SWING = 1.10
#: a median spread of an item's sessions around the fit above this (percent) is flagged
NOISE_PCT = 10.0

Warn = Callable[[str], None]


def log_warning(message: str) -> None:
    LOGGER.warning(message)


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds (summed over processors) at one moment."""

    wall_s: float
    busy_s: float
    steal_s: float
    total_s: float
    own_s: float


def cpu_sample() -> CpuSample | None:
    """Now's counters, or None where ``/proc/stat`` cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as file:
            fields = file.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(value) for value in fields[1:9]] + [0] * max(0, 9 - len(fields))
    user, nice, system, idle, iowait, irq, softirq, steal = ticks[:8]
    hertz = os.sysconf("SC_CLK_TCK")
    own = os.times()
    return CpuSample(time.monotonic(), (user + nice + system + irq + softirq) / hertz,
                     steal / hertz, sum(ticks[:8]) / hertz,
                     own.user + own.system + own.children_user + own.children_system)


def usage_between(before: CpuSample | None, after: CpuSample | None) -> dict[str, Any]:
    """Other processes' cores and the steal percentage between two samples (None: unknown)."""
    if before is None or after is None or after.wall_s <= before.wall_s:
        return {"seconds": None, "other_cores": None, "steal_pct": None}
    seconds = after.wall_s - before.wall_s
    other = (after.busy_s - before.busy_s) - (after.own_s - before.own_s)
    total = after.total_s - before.total_s
    return {"seconds": seconds, "other_cores": max(0.0, other / seconds),
            "steal_pct": 100.0 * (after.steal_s - before.steal_s) / total if total > 0 else 0.0}


def busy_now(window_s: float = 1.0) -> dict[str, Any]:
    """Other processes' use over the next ``window_s`` seconds (this process sleeps)."""
    before = cpu_sample()
    time.sleep(window_s)
    return usage_between(before, cpu_sample())


def steadiness(windows: int = 8, window_s: float = 0.25) -> dict[str, float]:
    """The probe's median per window (microseconds) and their swing (max / min)."""
    import numpy as np

    first = np.random.default_rng(0).standard_normal(1 << 16).astype(np.float32)
    second, out = first.copy(), np.empty_like(first)
    medians = []
    for _ in range(windows):
        samples, end = [], time.perf_counter() + window_s
        while time.perf_counter() < end:
            start = time.perf_counter_ns()
            np.multiply(first, second, out=out)
            np.add(out, first, out=out)
            samples.append(time.perf_counter_ns() - start)
        medians.append(float(np.median(samples)) / 1e3)
    return {"probe_us": float(np.median(medians)), "swing": max(medians) / min(medians)}


def quiet_check(window_s: float = 2.0) -> dict[str, Any]:
    """Other processes' use and the probe's swing over about ``2 * window_s`` seconds."""
    usage = busy_now(window_s)
    return {**usage, **steadiness(windows=8, window_s=window_s / 8)}


def is_busy(usage: dict[str, Any]) -> bool:
    return (usage["other_cores"] or 0.0) > BUSY_CORES or \
        (usage["steal_pct"] or 0.0) > STEAL_PCT or usage.get("swing", 1.0) > SWING


def wait_quiet(limit_s: float, *, window_s: float = 2.0,
               on_wait: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Wait until one ``window_s`` window is quiet (:data:`BUSY_CORES`, :data:`STEAL_PCT`) or
    ``limit_s`` seconds have passed; says how long it waited and whether it found quiet."""
    started = time.monotonic()
    while True:
        usage = quiet_check(window_s)
        waited = time.monotonic() - started
        if not is_busy(usage):
            return {"waited_s": waited, "quiet": True, **usage}
        if waited >= limit_s:
            return {"waited_s": waited, "quiet": False, **usage}
        if on_wait is not None:
            on_wait(usage)


def describe(usage: dict[str, Any]) -> str:
    text = ("CPU counters unavailable" if usage["other_cores"] is None else
            f"other processes used {usage['other_cores']:.2f} of {os.cpu_count()} cores, "
            f"steal {usage['steal_pct']:.1f} %")
    if "swing" in usage:
        text += f", a fixed probe's speed swung {usage['swing']:.2f}x within seconds"
    return text


class Monitor:
    """Collects the conditions of one timing run and warns once per kind of interference."""

    def __init__(self, what: str, on_warning: Warn = log_warning) -> None:
        self.what, self.on_warning = what, on_warning
        self.conditions: dict[str, Any] = {"cores": os.cpu_count(), "loadavg_start":
                                           _loadavg(), "before": None, "wait": None,
                                           "processes": [], "warnings": []}
        self._started: CpuSample | None = None

    def warn(self, kind: str, message: str) -> None:
        if all(entry["kind"] != kind for entry in self.conditions["warnings"]):
            self.conditions["warnings"].append({"kind": kind, "message": message})
            self.on_warning(f"warning: {message}")

    def before(self, wait_quiet_s: float = 0.0) -> None:
        """Check (or with ``wait_quiet_s`` > 0 wait for) a quiet machine before timing."""
        if wait_quiet_s > 0:
            waited = wait_quiet(wait_quiet_s)
            self.conditions["wait"] = waited
            usage = waited
        else:
            usage = quiet_check(1.0)
        self.conditions["before"] = {key: usage[key]
                                     for key in ("other_cores", "steal_pct", "probe_us", "swing")}
        if is_busy(usage):
            hint = ("still busy after --wait-quiet" if wait_quiet_s > 0
                    else "--wait-quiet SECONDS waits for a quiet machine")
            state = "busy" if (usage["other_cores"] or 0.0) > BUSY_CORES or \
                (usage["steal_pct"] or 0.0) > STEAL_PCT else "unsteady"
            self.warn("busy", f"the machine is {state} before {self.what} ({describe(usage)}): "
                      f"timings will be slow and noisy; {hint}")

    def start(self) -> None:
        self._started = cpu_sample()

    def stop(self, label: str) -> dict[str, Any]:
        """Record the interval since :meth:`start` (one worker process) and warn if busy."""
        usage = {"label": label, **usage_between(self._started, cpu_sample())}
        self.conditions["processes"].append(usage)
        if usage["other_cores"] is not None and is_busy(usage):
            self.warn("busy", f"{describe(usage)} while {self.what} ran {label}: its timings "
                      f"may be slow; --wait-quiet SECONDS waits for a quiet machine")
        return usage

    def speed(self, fit_summary: dict[str, Any], key: str = "speed") -> None:
        """Warn when too many timing blocks ran off the machine's typical speed, or an item's
        sessions spread too widely around the fit; the summary is kept as ``key``."""
        self.conditions[key] = fit_summary
        noise = fit_summary.get("median_item_spread_pct")
        if noise is not None and noise > NOISE_PCT:
            self.warn("noise", f"timings were noisy during {self.what}: an item's sessions "
                      f"spread {noise:.0f} % around its latency (median over items); the "
                      f"results will not repeat to better than that")
        blocks, off = fit_summary["blocks"], fit_summary["blocks_off"]
        if blocks and 100.0 * off / blocks > OFF_BLOCKS_PCT:
            self.warn("speed", f"the machine's speed changed during {self.what}: {off} of "
                      f"{blocks} timing blocks ran more than {OFF_SPEED_PCT:.0f} % off its "
                      f"typical speed (latencies are taken at its fast speed)")

    def drift(self, drift_pct: float | None, since: str) -> None:
        """Warn when the reference networks run faster or slower than ``since``."""
        self.conditions["drift_pct"] = drift_pct
        if drift_pct is not None and abs(drift_pct) > DRIFT_PCT:
            self.warn("drift", f"the reference networks ran {abs(drift_pct):.0f} % "
                      f"{'slower' if drift_pct > 0 else 'faster'} than {since}: the machine's "
                      f"speed has changed since")

    def summary(self) -> dict[str, Any]:
        known = [row for row in self.conditions["processes"] if row["other_cores"] is not None]
        return {**self.conditions, "loadavg_end": _loadavg(),
                "other_cores_max": max((row["other_cores"] for row in known), default=None),
                "steal_pct_max": max((row["steal_pct"] for row in known), default=None)}


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None
