"""Measured latency lookup tables (LUTs) and LUT-based latency prediction.

FBNet (Wu et al. 2019, Eq. 5) models a network's latency as the sum of its operators' latencies,

    LAT(a) = sum_l LAT(b_l^(a)),

each ``LAT(b)`` measured once per operator key (:mod:`hwnas.cost.opkey`) on the target engine.
Run end to end, a network differs from that sum by a per-call overhead (ONNX Runtime pays one
``session.run`` per network instead of one per block) and, in torch eager, by a factor (weights
of later layers are no longer in cache: 25-33 % slower, docs/reference.md section 5). A table
therefore carries a correction fitted on a few calibration networks (:mod:`hwnas.cost.calibration`)
and predicts

    LAT(a) = scale * sum_l LUT[key_l(a)] + offset.

Without a calibration ``scale = 1`` and ``offset = 0`` (the raw FBNet sum).

File format: JSON only (see :meth:`LatencyTable.to_dict`); loading parses and validates, it never
executes code. A table is used only with its own space, resolution and engine.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from hwnas.arch.spec import ArchSpec
from hwnas.cost.base import CostModel, LayerPrice
from hwnas.cost.calibration import Calibration
from hwnas.cost.engines import IDENTITY_FIELDS, TimingSettings, TimingStats, combine_rounds
from hwnas.cost.opkey import OpKey, key_of_layer, op_keys, space_keys
from hwnas.errors import HwnasError
from hwnas.io import atomic_write_json, read_json

FORMAT = "hwnas-latency-lut"
VERSION = 1


class LutError(HwnasError):
    """A malformed LUT file, or a LUT used with the wrong space, resolution, engine or arch."""


@dataclass
class LutEntry:
    """One operator key with its per-round timings; latency = median of the round medians."""

    key: OpKey
    rounds: list[TimingStats] = field(default_factory=list)

    @property
    def latency_ms(self) -> float:
        return combine_rounds(self.rounds).median_ms

    def to_dict(self) -> dict[str, Any]:
        combined = combine_rounds(self.rounds)
        return {"id": self.key.id, "key": self.key.to_dict(), "latency_ms": combined.median_ms,
                "p10_ms": combined.p10_ms, "p90_ms": combined.p90_ms,
                "rounds": [stats.to_dict() for stats in self.rounds]}

    @classmethod
    def from_dict(cls, data: Any) -> LutEntry:
        if not isinstance(data, dict) or not isinstance(data.get("rounds"), list):
            raise LutError(f"entry: expected an object with 'key' and 'rounds', got {data!r:.200}")
        key = OpKey.from_dict(data.get("key"))
        rounds = [TimingStats.from_dict(item) for item in data["rounds"]]
        if not rounds:
            raise LutError(f"entry {key.id}: has no timing rounds")
        return cls(key, rounds)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class LatencyTable(CostModel):
    """A measured per-layer latency table of one space (name + resolution) on one engine."""

    unit = "ms"

    def __init__(self, *, space: dict[str, Any], engine: dict[str, Any], timing: TimingSettings,
                 entries: dict[OpKey, LutEntry] | None = None,
                 calibration: Calibration | None = None, created: str | None = None,
                 source: str = "<memory>") -> None:
        self.space = dict(space)
        self.engine = dict(engine)
        self.timing = timing
        self.entries: dict[OpKey, LutEntry] = dict(entries or {})
        self.calibration = calibration
        self.created = created or _now()
        self.source = source
        short = "ort" if engine.get("name") == "onnxruntime" else engine.get("name")
        self.name = f"{short}-{engine.get('threads')}t latency"

    # ---- identity -------------------------------------------------------------------------
    @property
    def space_name(self) -> str:
        return self.space["name"]

    @property
    def resolution(self) -> int:
        return self.space["resolution"]

    def describe(self) -> str:
        return (f"LUT {self.source} (space {self.space_name} at {self.resolution} px, "
                f"{self.engine.get('name')} {self.engine.get('threads')} thread(s), "
                f"{self.engine.get('layout')})")

    def check_space(self, space: Any) -> None:
        """Refuse a space other than the one the table was built for, naming both (a table of
        a space's ``-sparse`` variant prices the space, its missing widths interpolated)."""
        names = (space.name, space.name.removesuffix("-sparse") + "-sparse")
        if self.space_name not in names or space.resolution != self.resolution:
            raise LutError(f"{self.describe()} cannot price space {space.name} at "
                           f"{space.resolution} px: build a LUT for that space (hwnas lut build "
                           f"--space {space.name})")

    # ---- prediction -----------------------------------------------------------------------
    def latency(self, key: OpKey, layer_name: str = "layer") -> float:
        entry = self.entries.get(key)
        if entry is None or not entry.rounds:
            raise LutError(f"{self.describe()} has no entry for {layer_name} key {key.id}")
        return entry.latency_ms

    def layer_latencies(self, arch: ArchSpec) -> list[float]:
        """LUT latency of each layer of ``arch`` in walk order (stem, blocks, head)."""
        # A space that searches the input resolution (DMasking) lists every one it measured.
        if arch.resolution not in self.space.get("resolutions", (self.resolution,)):
            raise LutError(f"{self.describe()} cannot price an architecture at "
                           f"{arch.resolution} px: build a LUT for its space and resolution")
        names = ["stem"] + [f"blocks.{i}" for i in range(len(arch.blocks))] + ["head"]
        try:
            return [self.latency(key, name) for key, name in zip(op_keys(arch), names)]
        except LutError as error:
            raise LutError(f"{error}; {_space_of(arch)}") from None

    def raw_sum(self, arch: ArchSpec) -> float:
        """FBNet's Eq. 5: the plain sum of the layer entries (no overhead, no scale)."""
        return float(sum(self.layer_latencies(arch)))

    @property
    def scale(self) -> float:
        return self.calibration.scale if self.calibration else 1.0

    @property
    def offset_ms(self) -> float:
        return self.calibration.offset_ms if self.calibration else 0.0

    def cost(self, arch: ArchSpec) -> float:
        """Predicted end-to-end latency in ms: ``scale * raw_sum + offset``."""
        return self.scale * self.raw_sum(arch) + self.offset_ms

    predict = cost

    def layer_price(self, space: Any) -> LayerPrice:
        """``scale * LUT[key of the layer] + offset`` (the table's space only)."""
        self.check_space(space)
        return LayerPrice(lambda layer: self.latency(key_of_layer(layer), layer.name),
                          self.scale, self.offset_ms, self.space_name.endswith("-sparse"))

    # ---- completeness ---------------------------------------------------------------------
    def measured_rounds(self, key: OpKey) -> int:
        entry = self.entries.get(key)
        return len(entry.rounds) if entry else 0

    def is_complete(self, space: Any) -> bool:
        return all(self.measured_rounds(key) >= self.timing.rounds for key in space_keys(space))

    # ---- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION, "unit": "ms",
            "space": self.space, "engine": self.engine, "timing": self.timing.to_dict(),
            "created": self.created, "updated": _now(),
            "prediction": {"formula": "scale * sum(entries) + offset_ms", "scale": self.scale,
                           "offset_ms": self.offset_ms},
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "entries": [entry.to_dict() for entry in self.entries.values()],
        }

    def save(self, path: str | Path) -> None:
        """Write the table atomically (temp file + rename): a crash leaves the old or new file."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, source: str = "<memory>") -> LatencyTable:
        try:
            return cls._from_dict(data, source)
        except LutError:
            raise
        except HwnasError as error:
            raise LutError(f"malformed LUT file {source}: {error}") from None

    @classmethod
    def _from_dict(cls, data: Any, source: str) -> LatencyTable:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise LutError(f"malformed LUT file {source}: not an hwnas latency table "
                           f"(expected \"format\": \"{FORMAT}\")")
        if data.get("version") != VERSION:
            raise LutError(f"LUT file {source}: unsupported version {data.get('version')!r} "
                           f"(this hwnas reads version {VERSION})")
        space, engine, timing = data.get("space"), data.get("engine"), data.get("timing")
        if not isinstance(space, dict) or not isinstance(space.get("name"), str) or not (
            isinstance(space.get("resolution"), int) and space["resolution"] > 0
        ):
            raise LutError(f"malformed LUT file {source}: field 'space' needs name and resolution")
        if not isinstance(engine, dict) or any(name not in engine for name in IDENTITY_FIELDS):
            raise LutError(f"malformed LUT file {source}: field 'engine' needs {IDENTITY_FIELDS}")
        if not isinstance(timing, dict) or set(timing) != {"warmup", "repeats", "rounds"}:
            raise LutError(f"malformed LUT file {source}: field 'timing' needs warmup, repeats, "
                           f"rounds")
        if not isinstance(data.get("entries"), list):
            raise LutError(f"malformed LUT file {source}: field 'entries' must be a list")
        entries: dict[OpKey, LutEntry] = {}
        for index, item in enumerate(data["entries"]):
            try:
                entry = LutEntry.from_dict(item)
            except HwnasError as error:
                raise LutError(f"malformed LUT file {source}: entries[{index}]: {error}") from None
            if entry.key in entries:
                raise LutError(f"malformed LUT file {source}: duplicate entry {entry.key.id}")
            entries[entry.key] = entry
        calibration = data.get("calibration")
        return cls(space=space, engine=engine, timing=TimingSettings(**timing), entries=entries,
                   calibration=None if calibration is None else Calibration.from_dict(calibration),
                   created=data.get("created") if isinstance(data.get("created"), str) else None,
                   source=source)

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a LUT file; any malformation is one :class:`LutError` naming the file."""
        return cls.from_dict(read_json(path, "LUT file"), source=str(path))


def _space_of(arch: ArchSpec) -> str:
    """Which known space ``arch`` belongs to, for error messages."""
    from hwnas.spaces import get_space, space_names

    for name in space_names("lut"):
        if get_space(name).contains(arch):
            return f"the architecture is in space {name}: build a LUT for that space"
    return "the architecture is in none of the known spaces"
