"""The settings of latency measurement: how calls are timed (:class:`TimingSettings`), and the
configs of ``hwnas lut build`` and ``hwnas lut validate`` (the timing method itself is
:mod:`hwnas.cost.engines`')."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hwnas.errors import HwnasError
from hwnas.settings import check, setting

ENGINE_NAMES = ("ort", "torch")
LAYOUTS = ("contiguous", "channels_last")


def check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise HwnasError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class TimingSettings:
    """How many calls to warm up and time, and in how many interleaved rounds."""

    warmup: int = 10
    repeats: int = 50
    rounds: int = 3

    def __post_init__(self) -> None:
        check_count("warmup", self.warmup, 0)
        check_count("repeats", self.repeats, 1)
        check_count("rounds", self.rounds, 1)

    def to_dict(self) -> dict[str, int]:
        return {"warmup": self.warmup, "repeats": self.repeats, "rounds": self.rounds}


@dataclass(frozen=True, kw_only=True)
class LutBuildConfig:
    """Every setting of ``hwnas lut build``."""

    space: str = setting("fbnet-cifar", "Space whose layers are measured (hwnas.spaces).")
    engine: str = setting("ort", "ort (ONNX Runtime) or torch (eager).", choices=ENGINE_NAMES)
    threads: int = setting(1, "Intra-op threads, fixed for all timings.", minimum=1)
    layout: str | None = setting(None, "Memory layout (torch only; default channels_last).",
                                 choices=LAYOUTS)
    warmup: int = setting(10, "Untimed calls before each timed run of a layer.", minimum=0)
    repeats: int = setting(50, "Timed calls per layer and round.", minimum=1)
    rounds: int = setting(3, "Interleaved rounds; the latency is their median.", minimum=1)
    calibration: int = setting(12, "Networks timed end to end to fit scale/offset (0: none).",
                               minimum=0)
    calibration_seed: int = setting(1, "Seed of the calibration networks.", minimum=0)
    network_warmup: int = setting(5, "Untimed calls per calibration network and round.",
                                  minimum=0)
    network_repeats: int = setting(40, "Timed calls per calibration network and round.",
                                   minimum=1)
    network_rounds: int = setting(3, "Interleaved rounds of the calibration networks.",
                                  minimum=1)

    def __post_init__(self) -> None:
        check(self)

    @property
    def timing(self) -> TimingSettings:
        return TimingSettings(warmup=self.warmup, repeats=self.repeats, rounds=self.rounds)

    @property
    def network_timing(self) -> TimingSettings:
        return TimingSettings(warmup=self.network_warmup, repeats=self.network_repeats,
                              rounds=self.network_rounds)


@dataclass(frozen=True, kw_only=True)
class LutValidateConfig:
    """Every setting of ``hwnas lut validate``."""

    n: int = setting(100, "Random architectures measured end to end.", minimum=2)
    seed: int = setting(0, "Seed of the random architectures.", minimum=0)
    warmup: int = setting(5, "Untimed calls per network and round.", minimum=0)
    repeats: int = setting(40, "Timed calls per network and round.", minimum=1)
    rounds: int = setting(3, "Interleaved rounds; the latency is their median.", minimum=1)
    chunk_size: int = setting(20, "Networks timed together (interleaved), journalled per chunk.",
                              minimum=1, compared=False)

    def __post_init__(self) -> None:
        check(self)

    @property
    def timing(self) -> TimingSettings:
        return TimingSettings(warmup=self.warmup, repeats=self.repeats, rounds=self.rounds)
