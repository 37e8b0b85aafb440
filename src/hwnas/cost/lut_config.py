"""The settings of latency measurement: how one item is timed (:class:`TimingSettings`), and
the configs of ``hwnas lut build`` and ``hwnas lut validate`` (the method is
:mod:`hwnas.cost.timing` and :mod:`hwnas.cost.sessions`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hwnas.cost.correction import MIN_NETWORKS
from hwnas.cost.sessions import SessionPlan
from hwnas.cost.timing import check_count
from hwnas.errors import HwnasError
from hwnas.settings import check, setting

ENGINE_NAMES = ("ort", "torch")
LAYOUTS = ("contiguous", "channels_last")


@dataclass(frozen=True)
class TimingSettings:
    """How many calls one session warms up and times."""

    warmup: int = 10
    repeats: int = 50

    def __post_init__(self) -> None:
        check_count("warmup", self.warmup, 0)
        check_count("repeats", self.repeats, 1)

    def to_dict(self) -> dict[str, int]:
        return {"warmup": self.warmup, "repeats": self.repeats}


def _processes(default: int) -> int:
    return setting(default, "Worker processes, started one after another.", minimum=1)


def _sessions(default: int) -> int:
    return setting(default, "Fresh sessions per item in each worker process.", minimum=1)


def _block_size() -> int:
    return setting(20, "Items timed back to back in one block (the fit's unit of machine "
                   "speed).", minimum=1)


def _wait_quiet() -> float:
    return setting(0.0, "Wait up to this many seconds for a quiet machine before timing.",
                   minimum=0, compared=False)


@dataclass(frozen=True, kw_only=True)
class LutBuildConfig:
    """Every setting of ``hwnas lut build``."""

    space: str = setting("fbnet-cifar", "Space whose layers are measured (hwnas.spaces).")
    engine: str = setting("ort", "ort (ONNX Runtime) or torch (eager).", choices=ENGINE_NAMES)
    threads: int = setting(1, "Intra-op threads, fixed for all timings.", minimum=1)
    layout: str | None = setting(None, "Memory layout (torch only; default channels_last).",
                                 choices=LAYOUTS)
    warmup: int = setting(10, "Untimed calls per layer and session.", minimum=0)
    repeats: int = setting(30, "Timed calls per layer and session.", minimum=1)
    processes: int = _processes(4)
    sessions: int = _sessions(2)
    block_size: int = _block_size()
    calibration: int = setting(12, "Networks at evenly spaced MFLOPs timed end to end beside "
                               "the layers, to fit scale/offset and as references (0: none).",
                               minimum=0)
    correction: int = setting(60, "Uniformly random networks timed end to end too; with the "
                              "calibration networks they fit scale/offset and a per-key "
                              "correction (0: none).", minimum=0)
    calibration_seed: int = setting(1, "Seed of the calibration and correction networks.",
                                    minimum=0)
    network_warmup: int = setting(5, "Untimed calls per calibration network and session.",
                                  minimum=0)
    network_repeats: int = setting(20, "Timed calls per calibration network and session.",
                                   minimum=1)
    wait_quiet: float = _wait_quiet()

    def __post_init__(self) -> None:
        check(self)
        if self.correction and self.calibration + self.correction < MIN_NETWORKS:
            raise HwnasError(f"correction needs calibration + correction >= {MIN_NETWORKS} "
                             f"networks, got {self.calibration} + {self.correction}")

    @property
    def timing(self) -> TimingSettings:
        return TimingSettings(warmup=self.warmup, repeats=self.repeats)

    @property
    def network_timing(self) -> TimingSettings:
        return TimingSettings(warmup=self.network_warmup, repeats=self.network_repeats)

    @property
    def plan(self) -> SessionPlan:
        return SessionPlan(processes=self.processes, sessions=self.sessions,
                           block_size=self.block_size)

    def measurement(self) -> dict[str, Any]:
        """What a resumed build must share with the stored table."""
        return {**self.timing.to_dict(), "network_warmup": self.network_warmup,
                "network_repeats": self.network_repeats, "processes": self.processes,
                "sessions": self.sessions, "block_size": self.block_size,
                "calibration": self.calibration, "correction": self.correction,
                "calibration_seed": self.calibration_seed,
                "calibration_timing": "alone"}


@dataclass(frozen=True, kw_only=True)
class LutValidateConfig:
    """Every setting of ``hwnas lut validate``."""

    n: int = setting(100, "Random architectures measured end to end.", minimum=2,
                     maximum=10_000)
    seed: int = setting(0, "Seed of the random architectures.", minimum=0)
    warmup: int = setting(5, "Untimed calls per network and session.", minimum=0)
    repeats: int = setting(20, "Timed calls per network and session.", minimum=1)
    groups: int = setting(2, "Independent groups of worker processes; their agreement is the "
                          "noise ceiling (1: none).", minimum=1)
    processes: int = _processes(4)
    sessions: int = _sessions(2)
    block_size: int = _block_size()
    wait_quiet: float = _wait_quiet()

    def __post_init__(self) -> None:
        check(self)

    @property
    def timing(self) -> TimingSettings:
        return TimingSettings(warmup=self.warmup, repeats=self.repeats)

    @property
    def plan(self) -> SessionPlan:
        """The session plan of one group."""
        return SessionPlan(processes=self.processes, sessions=self.sessions,
                           block_size=self.block_size)
