"""Energy: measuring it where the machine can, and predicting it as a :class:`CostModel`.

Measuring. Linux exposes Intel RAPL (and AMD's RAPL-compatible counters on recent kernels)
through the powercap interface: ``/sys/class/powercap/intel-rapl:<i>/energy_uj`` is a cumulative
energy counter in microjoules for package ``i`` that wraps to 0 after ``max_energy_range_uj``.
:class:`RaplEnergyReader` sums the package-level zones (not their ``intel-rapl:<i>:<j>``
sub-zones, which are already counted in the package) and handles one wrap per zone between two
readings, so measurements must be shorter than one counter period (tens of seconds to minutes at
typical package power). Reading ``energy_uj`` needs root on kernels patched for CVE-2020-8694.
:func:`energy_reader` returns a reader or raises :class:`EnergyUnavailable` with a one-line
reason; virtual machines usually have no powercap zones at all.

Predicting. ChamNet (Dai et al., CVPR 2019) predicts energy with the same kind of Gaussian-process
model as accuracy, trained on measured architectures (:func:`fit_predicted_cost`).
:class:`PredictedCost` plugs any fitted sklearn-shaped predictor over a space's encoding into
the cost interface, so a predicted energy (or latency) budget is used exactly like a measured
LUT.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from hwnas.arch.spec import ArchSpec
from hwnas.cost.base import ChoiceCost, CostModel
from hwnas.errors import HwnasError
from hwnas.spaces.space import SearchSpace

POWERCAP_ROOT = Path("/sys/class/powercap")
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")


class EnergyUnavailable(HwnasError):
    """This machine exposes no usable energy counter; the message says why, in one line."""


@dataclass(frozen=True)
class EnergyMeasurement:
    joules: float
    seconds: float

    @property
    def watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else float("nan")


@dataclass(frozen=True)
class RaplZone:
    """One package-level powercap zone: its counter file and wrap-around range (µJ)."""

    name: str
    energy_file: Path
    max_range_uj: int

    def read_uj(self) -> int:
        return int(self.energy_file.read_text().strip())


def counter_delta_uj(before: int, after: int, max_range_uj: int) -> int:
    """Energy between two readings of a counter that wraps to 0 after ``max_range_uj``."""
    return after - before if after >= before else after + (max_range_uj - before)


class RaplEnergyReader:
    """Whole-package energy from RAPL powercap counters (all packages summed)."""

    name = "rapl"
    unit = "J"

    def __init__(self, zones: Sequence[RaplZone]) -> None:
        if not zones:
            raise EnergyUnavailable("no RAPL package zones given")
        self.zones = tuple(zones)

    def read(self) -> tuple[int, ...]:
        """Raw counters (µJ), one per zone; pass two of these to :meth:`joules_between`."""
        return tuple(zone.read_uj() for zone in self.zones)

    def joules_between(self, before: Sequence[int], after: Sequence[int]) -> float:
        total = sum(
            counter_delta_uj(start, end, zone.max_range_uj)
            for zone, start, end in zip(self.zones, before, after)
        )
        return total * 1e-6

    def measure(self, function: Callable[[], object], *, repeats: int = 1) -> EnergyMeasurement:
        """Energy and wall time of calling ``function`` ``repeats`` times (whole package: idle
        and other processes' power are included, so subtract a baseline for a fair number)."""
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise HwnasError(f"repeats must be an integer >= 1, got {repeats!r}")
        before, start = self.read(), time.perf_counter()
        for _ in range(repeats):
            function()
        after, stop = self.read(), time.perf_counter()
        return EnergyMeasurement(self.joules_between(before, after), stop - start)


def _zone(path: Path) -> RaplZone:
    energy_file = path / "energy_uj"
    try:
        max_range = int((path / "max_energy_range_uj").read_text().strip())
        energy_file.read_text()
    except PermissionError:
        raise EnergyUnavailable(
            f"{energy_file} is not readable by this user (RAPL needs root on patched kernels)"
        ) from None
    except (OSError, ValueError) as error:
        raise EnergyUnavailable(f"cannot read RAPL zone {path}: {error}") from None
    return RaplZone(path.name, energy_file, max_range)


def energy_reader(root: str | Path = POWERCAP_ROOT) -> RaplEnergyReader:
    """The machine's RAPL reader, or :class:`EnergyUnavailable` with the one-line reason."""
    root = Path(root)
    if not root.is_dir():
        raise EnergyUnavailable(f"no energy counters on this machine: {root} does not exist "
                                "(no powercap/RAPL driver, e.g. a virtual machine)")
    packages = sorted(path for path in root.iterdir() if _PACKAGE_ZONE.match(path.name))
    if not packages:
        raise EnergyUnavailable(f"no energy counters on this machine: {root} has no "
                                "intel-rapl:<i> package zones")
    return RaplEnergyReader([_zone(path) for path in packages])


def energy_unavailable_reason(root: str | Path = POWERCAP_ROOT) -> str | None:
    """``None`` when :func:`energy_reader` works here, else its one-line reason."""
    try:
        energy_reader(root)
    except EnergyUnavailable as error:
        return str(error)
    return None


class Predictor(Protocol):
    def predict(self, X: np.ndarray) -> np.ndarray: ...


class PredictedCost(CostModel):
    """A fitted predictor over a space's encoding as a cost model:
    ``cost(arch) = predictor.predict(space.encode([space.choices_of(arch)]))``. Not additive,
    so the layer matrix is the base class's first-order expansion."""

    def __init__(self, predictor: Predictor, space: SearchSpace, *,
                 name: str = "predicted energy", unit: str = "mJ") -> None:
        self.predictor, self.space, self.name, self.unit = predictor, space, name, unit

    def costs_choices(self, choices: np.ndarray) -> np.ndarray:
        """One batched ``predict`` call for a choice matrix."""
        matrix = np.atleast_2d(np.asarray(choices))
        if len(matrix) == 0:
            return np.zeros(0)
        return np.asarray(self.predictor.predict(self.space.encode(matrix)), dtype=float).ravel()

    def cost(self, arch: ArchSpec) -> float:
        return float(self.costs([arch])[0])

    def costs(self, archs: Sequence[ArchSpec]) -> np.ndarray:
        return self.costs_choices(np.array([self.space.choices_of(arch) for arch in archs],
                                           dtype=np.int64).reshape(len(archs), -1))

    def choice_cost(self, space: Any) -> ChoiceCost:
        if space.name != self.space.name:
            raise HwnasError(f"{self.name} was fitted on space {self.space.name!r}, not "
                             f"{space.name!r}")
        return ChoiceCost(self.costs_choices, self.name, self.unit)


def fit_predicted_cost(path: str | Path, space: SearchSpace,
                       name: str = "predicted energy") -> PredictedCost:
    """ChamNet's energy predictor: a GP (log target) on ``space.encode`` of measured
    architectures, read from ``{"unit": "mJ", "measurements": [{"arch": <the space's format of
    an architecture>, "energy": <value>}, ...]}`` (at least 3)."""
    from hwnas.io import read_json
    from hwnas.predictors.gp import GaussianProcessPredictor

    document = read_json(Path(path), "energy measurements")
    rows = document.get("measurements") if isinstance(document, dict) else None
    if not isinstance(rows, list) or len(rows) < 3:
        raise HwnasError(f"{path}: needs 'measurements', a list of at least 3 "
                         f"{{arch, energy}} objects")
    choices, values = [], []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or "arch" not in row or "energy" not in row:
            raise HwnasError(f"{path}: measurements[{index}] needs 'arch' and 'energy'")
        choices.append(space.parse(row["arch"]))
        values.append(row["energy"])
    predictor = GaussianProcessPredictor(target_transform="log").fit(
        space.encode(np.array(choices, dtype=np.int64)), np.asarray(values, dtype=float))
    return PredictedCost(predictor, space, name=name, unit=str(document.get("unit", "")))
