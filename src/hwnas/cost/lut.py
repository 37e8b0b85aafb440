"""Measured latency lookup tables (LUTs) and LUT-based latency prediction.

FBNet (Wu et al. 2019, Eq. 5) models a network's latency as the sum of its operators' latencies,

    LAT(a) = sum_l LAT(b_l^(a)),

each ``LAT(b)`` measured once per operator key (:mod:`hwnas.cost.opkey`) on the target engine.
Run end to end, a network differs from that sum by a per-call overhead (ONNX Runtime pays one
``session.run`` per network instead of one per block) and, in torch eager, by a factor (weights
of later layers are no longer in cache: 25-33 % slower, docs/reference.md section 5). A table
therefore carries a correction fitted on a few calibration networks (:mod:`hwnas.cost.calibration`)
and predicts

    LAT(a) = scale * sum_l LUT[key_l(a)] (1 + c_key_l(a)) + offset (+ the correction's d),

with per-key corrections ``c`` fitted to more networks timed end to end
(:mod:`hwnas.cost.correction`; 0 without). Without a calibration ``scale = 1`` and ``offset = 0``
(the raw FBNet sum).

File format: JSON only (see :meth:`LatencyTable.to_dict`); loading parses and validates, it never
executes code. A table is used only with its own space, resolution and engine. Format 2 stores
every session's timing of every entry and calibration network, the fitted latencies
(:mod:`hwnas.cost.sessions`), the reference networks' latencies and the conditions the table was
measured in (:mod:`hwnas.cost.health`); format 1 (one process, interleaved rounds, latency = the
median of the round medians) is still read, for prediction and validation.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from hwnas.arch.spec import ArchSpec
from hwnas.cost.base import CostModel, LayerPrice
from hwnas.cost.calibration import Calibration
from hwnas.cost.correction import MINIMUM, KeyCorrection
from hwnas.cost.engines import IDENTITY_FIELDS
from hwnas.cost.timing import TimingStats, combine_rounds
from hwnas.arch.build import walk
from hwnas.cost.opkey import OpKey, layer_keys, op_keys, space_keys
from hwnas.errors import HwnasError
from hwnas.io import atomic_write_json, read_json

FORMAT = "hwnas-latency-lut"
VERSION = 2


class LutError(HwnasError):
    """A malformed LUT file, or a LUT used with the wrong space, resolution, engine or arch."""


@dataclass
class LutEntry:
    """One operator key: its latency (the build's fit, None until then), the spread of its
    sessions around the fit (percent), its correction inside networks (a fraction, 0 without)
    and every session's timing."""

    key: OpKey
    latency_ms: float | None = None
    spread_pct: float | None = None
    sessions: list[dict[str, Any]] = field(default_factory=list)
    correction: float = 0.0

    @property
    def price_ms(self) -> float | None:
        """What the key costs in a prediction: its latency times ``1 + correction``."""
        return None if self.latency_ms is None else self.latency_ms * (1.0 + self.correction)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.key.id, "key": self.key.to_dict(), "latency_ms": self.latency_ms,
                "correction": self.correction, "spread_pct": self.spread_pct,
                "sessions": self.sessions}

    @classmethod
    def from_dict(cls, data: Any, version: int = VERSION) -> LutEntry:
        if not isinstance(data, dict):
            raise LutError(f"entry: expected an object, got {data!r:.200}")
        key = OpKey.from_dict(data.get("key"))
        if version == 1:
            return cls._from_rounds(key, data.get("rounds"))
        sessions, latency = data.get("sessions"), data.get("latency_ms")
        if not isinstance(sessions, list):
            raise LutError(f"entry {key.id}: 'sessions' must be a list")
        for row in sessions:
            TimingStats.from_dict(row)
        if latency is not None and not _positive(latency):
            raise LutError(f"entry {key.id}: latency_ms must be a positive number, "
                           f"got {latency!r}")
        correction = data.get("correction", 0.0)
        if (isinstance(correction, bool) or not isinstance(correction, (int, float))
                or not MINIMUM <= correction < float("inf")):
            raise LutError(f"entry {key.id}: correction must be a finite number >= {MINIMUM}, "
                           f"got {correction!r}")
        return cls(key, latency, data.get("spread_pct"), sessions, float(correction))

    @classmethod
    def _from_rounds(cls, key: OpKey, rounds: Any) -> LutEntry:
        if not isinstance(rounds, list) or not rounds:
            raise LutError(f"entry {key.id}: has no timing rounds")
        stats = [TimingStats.from_dict(item) for item in rounds]
        return cls(key, combine_rounds(stats).median_ms, None,
                   [{"process": 0, "session": index, "block": f"0.{index}.0", **item.to_dict()}
                    for index, item in enumerate(stats)])


@dataclass
class BuildRecord:
    """How a format-2 table was measured: the worker processes done so far, the calibration
    networks' sessions and fitted latencies (the *references* a later run compares its machine
    against), and the conditions of every build run."""

    processes_done: list[int] = field(default_factory=list)
    networks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    references: dict[str, float] = field(default_factory=dict)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    speed: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"processes_done": self.processes_done, "references": self.references,
                "speed": self.speed, "conditions": self.conditions,
                "networks": [{"arch": arch, "sessions": rows}
                             for arch, rows in self.networks.items()]}

    @classmethod
    def from_dict(cls, data: Any) -> BuildRecord:
        if not isinstance(data, dict) or not isinstance(data.get("networks"), list):
            raise LutError(f"field 'build' must be an object with 'networks', got {data!r:.200}")
        done, references = data.get("processes_done"), data.get("references")
        if not isinstance(done, list) or not all(isinstance(i, int) for i in done):
            raise LutError("field 'build.processes_done' must be a list of integers")
        if not isinstance(references, dict) or not all(map(_positive, references.values())):
            raise LutError("field 'build.references' must map networks to positive latencies")
        return cls(done, {item["arch"]: item["sessions"] for item in data["networks"]},
                   references, list(data.get("conditions") or []), data.get("speed"))


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class LatencyTable(CostModel):
    """A measured per-layer latency table of one space (name + resolution) on one engine."""

    unit = "ms"

    def __init__(self, *, space: dict[str, Any], engine: dict[str, Any],
                 timing: dict[str, Any] | None = None,
                 entries: dict[OpKey, LutEntry] | None = None,
                 calibration: Calibration | None = None, correction: KeyCorrection | None = None,
                 created: str | None = None, source: str = "<memory>",
                 build: BuildRecord | None = None, version: int = VERSION) -> None:
        self.space = dict(space)
        self.engine = dict(engine)
        self.timing = dict(timing or {})
        self.entries: dict[OpKey, LutEntry] = dict(entries or {})
        self.build = build if build is not None else BuildRecord()
        self.version = version
        self.calibration = calibration
        self.correction = correction
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
    def entry(self, key: OpKey, layer_name: str = "layer") -> LutEntry:
        entry = self.entries.get(key)
        if entry is None or entry.latency_ms is None:
            raise LutError(f"{self.describe()} has no entry for {layer_name} key {key.id}")
        return entry

    def latency(self, key: OpKey, layer_name: str = "layer") -> float:
        """The key's price in a prediction (its latency with its correction)."""
        return self.entry(key, layer_name).price_ms

    def layer_latencies(self, arch: ArchSpec) -> list[float]:
        """Price of each layer of ``arch`` in walk order (stem, blocks, head): its entry's
        latency with the entry's correction."""
        # A space that searches the input resolution (DMasking) lists every one it measured.
        if arch.resolution not in self.space.get("resolutions", (self.resolution,)):
            raise LutError(f"{self.describe()} cannot price an architecture at "
                           f"{arch.resolution} px: build a LUT for its space and resolution")
        try:
            return [self.layer_price_ms(layer) for layer in walk(arch)]
        except LutError as error:
            raise LutError(f"{error}; {_space_of(arch)}") from None

    def layer_price_ms(self, layer: Any) -> float:
        """The price of one layer of the walk: the sum of its keys' (a cell's parts)."""
        return float(sum(self.latency(key, layer.name) for key in layer_keys(layer)))

    def raw_sum(self, arch: ArchSpec) -> float:
        """FBNet's Eq. 5: the plain sum of the layers' measured latencies (no correction, no
        overhead, no scale)."""
        self.layer_latencies(arch)  # the same checks and errors
        return float(sum(self.entries[key].latency_ms for key in op_keys(arch)))

    def corrected_sum(self, arch: ArchSpec) -> float:
        """The sum of the layers' prices (latencies with their corrections)."""
        return float(sum(self.layer_latencies(arch)))

    @property
    def scale(self) -> float:
        return self.calibration.scale if self.calibration else 1.0

    @property
    def offset_ms(self) -> float:
        """The calibration's offset plus the per-key correction's overhead."""
        return ((self.calibration.offset_ms if self.calibration else 0.0)
                + (self.correction.offset_ms if self.correction else 0.0))

    def cost(self, arch: ArchSpec) -> float:
        """Predicted end-to-end latency in ms: ``scale * corrected_sum + offset``; a negative
        prediction (an offset edited below what the table's sums allow) raises."""
        predicted = self.scale * self.corrected_sum(arch) + self.offset_ms
        if not predicted >= 0:
            raise LutError(f"{self.describe()} predicts {predicted:.4g} ms for this "
                           f"architecture (scale {self.scale:.4g}, offset "
                           f"{self.offset_ms:.4g} ms): a latency must be >= 0")
        return predicted

    predict = cost

    def layer_price(self, space: Any) -> LayerPrice:
        """``scale * price of the layer's key + offset`` (the table's space only)."""
        self.check_space(space)
        return LayerPrice(self.layer_price_ms,
                          self.scale, self.offset_ms, self.space_name.endswith("-sparse"))

    # ---- completeness ---------------------------------------------------------------------
    def is_complete(self, space: Any) -> bool:
        """Whether every key of ``space`` has a fitted latency."""
        return all(key in self.entries and self.entries[key].latency_ms is not None
                   for key in space_keys(space))

    # ---- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION, "unit": "ms",
            "space": self.space, "engine": self.engine, "timing": self.timing,
            "created": self.created, "updated": _now(),
            "prediction": {"formula": "scale * sum(latency_ms * (1 + correction)) + offset_ms",
                           "scale": self.scale, "offset_ms": self.offset_ms},
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "correction": self.correction.to_dict() if self.correction else None,
            "build": self.build.to_dict(),
            "entries": [entry.to_dict() for entry in self.entries.values()],
        }

    def save(self, path: str | Path) -> None:
        """Write the table atomically (temp file + rename): a crash leaves the old or new file."""
        if self.version != VERSION:
            raise LutError(f"{self.describe()} is a format-{self.version} table, read only: "
                           f"build a new one")
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
        version = data.get("version")
        if version not in (1, VERSION):
            raise LutError(f"LUT file {source}: unsupported version {version!r} "
                           f"(this hwnas reads versions 1 and {VERSION})")
        space, engine, timing = data.get("space"), data.get("engine"), data.get("timing")
        if not isinstance(space, dict) or not isinstance(space.get("name"), str) or not (
            isinstance(space.get("resolution"), int) and space["resolution"] > 0
        ):
            raise LutError(f"malformed LUT file {source}: field 'space' needs name and resolution")
        if not isinstance(engine, dict) or any(name not in engine for name in IDENTITY_FIELDS):
            raise LutError(f"malformed LUT file {source}: field 'engine' needs {IDENTITY_FIELDS}")
        if not isinstance(timing, dict) or not {"warmup", "repeats"} <= set(timing):
            raise LutError(f"malformed LUT file {source}: field 'timing' needs warmup and "
                           f"repeats")
        if not isinstance(data.get("entries"), list):
            raise LutError(f"malformed LUT file {source}: field 'entries' must be a list")
        entries: dict[OpKey, LutEntry] = {}
        for index, item in enumerate(data["entries"]):
            try:
                entry = LutEntry.from_dict(item, version)
            except HwnasError as error:
                raise LutError(f"malformed LUT file {source}: entries[{index}]: {error}") from None
            if entry.key in entries:
                raise LutError(f"malformed LUT file {source}: duplicate entry {entry.key.id}")
            entries[entry.key] = entry
        calibration, correction = data.get("calibration"), data.get("correction")
        build = BuildRecord.from_dict(data.get("build")) if version == VERSION else None
        return cls(space=space, engine=engine, timing=timing, entries=entries,
                   calibration=None if calibration is None else Calibration.from_dict(calibration),
                   correction=None if correction is None else KeyCorrection.from_dict(correction),
                   created=data.get("created") if isinstance(data.get("created"), str) else None,
                   source=source, build=build, version=version)

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
