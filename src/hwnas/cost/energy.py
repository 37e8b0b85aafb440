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
model as accuracy, trained on measured architectures. :class:`PredictedCost` plugs any fitted
sklearn-shaped predictor plus an architecture encoder into the cost interface, so a predicted
energy (or latency, or accuracy) budget is used exactly like a measured LUT.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from hwnas.arch.spec import ArchSpec
from hwnas.cost.base import CostModel
from hwnas.errors import HwnasError
from hwnas.spaces.fbnet import LayerwiseSpace

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
    """A fitted predictor as a cost model: ``cost(arch) = predictor.predict([encoder(arch)])``.

    ``encoder`` maps an :class:`ArchSpec` to the fixed-length vector the predictor was trained
    on (for a layer-wise space, e.g. ``one_hot_choices(space.choices_of(arch), K)``). Not additive,
    so :meth:`layer_cost_matrix` is the base class's first-order expansion.
    """

    def __init__(
        self,
        predictor: Predictor,
        encoder: Callable[[ArchSpec], np.ndarray],
        *,
        name: str = "predicted energy",
        unit: str = "mJ",
    ) -> None:
        if not callable(getattr(predictor, "predict", None)):
            raise HwnasError(f"predictor {predictor!r} has no predict(X) method")
        if not callable(encoder):
            raise HwnasError(f"encoder {encoder!r} is not callable")
        self.predictor = predictor
        self.encoder = encoder
        self.name = name
        self.unit = unit

    def _encoded(self, archs: Sequence[ArchSpec]) -> np.ndarray:
        return np.stack([np.asarray(self.encoder(arch), dtype=float).ravel() for arch in archs])

    def cost(self, arch: ArchSpec) -> float:
        return float(self.costs([arch])[0])

    def costs(self, archs: Sequence[ArchSpec]) -> np.ndarray:
        """One batched ``predict`` call for all ``archs``."""
        if len(archs) == 0:
            return np.zeros(0)
        prediction = np.asarray(self.predictor.predict(self._encoded(archs)), dtype=float)
        return prediction.ravel()


def one_hot_encoder(space: LayerwiseSpace) -> Callable[[ArchSpec], np.ndarray]:
    """``arch -> one-hot of space.choices_of(arch)`` (length layers x candidates), for
    :class:`PredictedCost` over a layer-wise space; archs outside the space raise."""

    from hwnas.predictors.gp import one_hot_choices  # late: keeps sklearn out of plain imports

    def encode(arch: ArchSpec) -> np.ndarray:
        return one_hot_choices(np.asarray(space.choices_of(arch)), space.num_candidates)

    return encode
