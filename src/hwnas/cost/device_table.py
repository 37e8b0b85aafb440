"""Real-device latency tables: HW-NAS-Bench's FBNet per-layer tables, and the NAS-Bench-201
whole-network latencies of HW-NAS-Bench and HELP (:class:`NB201Latency`).

HW-NAS-Bench (Li et al., ICLR 2021) prices an FBNet architecture on a device as a sum of
lookup-table entries: stem + one entry per searchable layer + head conv + pool + FC. The shared
file ``fbnet_lut_cifar100.json`` holds those tables for the CIFAR-100 setting of the FBNet space
(``hwnas.spaces.get_space("fbnet-cifar100")``: 32 px, stem 16 stride 1, head 1504, 100 classes) on
four devices, as

    cost(arch) = base_all_k3_e1 + sum_l delta[l, arch[l]]    (ms),

which reproduces every HW-NAS-Bench network sum exactly (docs/reference.md section 4). Devices:
``raspi4`` (Raspberry Pi 4, measured), ``pixel3`` (Pixel 3, measured), ``eyeriss`` (ASIC, simulated)
and ``fpga`` (simulated). No energy or edge-GPU table is available. The space's blocks keep the
first 1x1 conv at expansion 1 (``e1_first_pointwise=True``), as HW-NAS-Bench's ``ConvBlock``
does (``hw_nas_bench_api/fbnet_models/model_infer.py``: ``conv1`` is built for every expansion);
a space without it is a different network and is refused.

Class-count caveat. HW-NAS-Bench notes that the CIFAR-10 and CIFAR-100 networks differ only in
the FC layer, so their latency differs by one architecture-independent constant (FC 1504->100
vs 1504->10). That constant is folded into ``base_all_k3_e1`` and cannot be separated, so an
``fbnet-cifar`` (10-class) architecture is refused unless ``allow_num_classes_mismatch=True``;
with it, the cost is the 100-class network's (a slight over-estimate, the same for every
architecture: rankings, budgets relative to other archs and DNAS gradients are unaffected, absolute
budgets are not exact).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.arch.spec import ArchSpec, SpecError
from hwnas.cost.base import ChoiceCost, CostModel, LayerCostMatrix
from hwnas.cost.nb201_additive import NB201AdditiveLatency
from hwnas.data.tables import FBNetLayerTable, load_fbnet_lut, nb201_latency, \
    nb201_latency_columns
from hwnas.errors import HwnasError
from hwnas.spaces import get_space
from hwnas.spaces.fbnet import FBNET_CANDIDATES, LayerwiseSpace
from hwnas.spaces.nb201 import NB201Space

DEVICE_NAMES = ("raspi4", "pixel3", "eyeriss", "fpga")
TABLE_SPACE = "fbnet-cifar100"


def _space_description(space: LayerwiseSpace) -> str:
    return f"{space.name!r} ({space.resolution} px, {space.head.num_classes} classes)"


def _check_table_matches_space(table: FBNetLayerTable, space: LayerwiseSpace) -> None:
    """The JSON states the network it prices; refuse a file that disagrees with our space."""
    setting = table.setting
    expected = {
        "num_classes": space.head.num_classes,
        "input_resolution": space.resolution,
        "stem_channels": space.stem.out_channels,
        "stem_stride": space.stem.stride,
        "header_channels": space.head.out_channels,
        "num_layer_list": [stage.depth for stage in space.stages],
        "channel_list": [stage.out_channels for stage in space.stages],
        "stride_list": [stage.stride for stage in space.stages],
    }
    for key, value in expected.items():
        if setting[key] != value:
            raise HwnasError(
                f"{table.source.name}: {key} is {setting[key]!r} but space {space.name!r} has "
                f"{value!r}"
            )
    if table.op_names != FBNET_CANDIDATES:
        raise HwnasError(f"{table.source.name}: op_names {list(table.op_names)} differ from "
                         f"the FBNet candidates {list(FBNET_CANDIDATES)}")


class DeviceTable(CostModel):
    """Latency (ms) of ``fbnet-cifar100`` architectures on one HW-NAS-Bench device."""

    unit = "ms"

    def __init__(
        self,
        device: str,
        base: float,
        delta: np.ndarray,
        *,
        allow_num_classes_mismatch: bool = False,
        source: str = "",
    ) -> None:
        self.device = device
        self.name = f"{device} latency"
        self.base = float(base)
        self.delta = np.array(delta, dtype=float)
        self.delta.setflags(write=False)
        self.space = get_space(TABLE_SPACE)
        if self.delta.shape != (self.space.num_layers, self.space.num_candidates):
            raise HwnasError(f"device table {device!r}: delta has shape {self.delta.shape}, "
                             f"expected ({self.space.num_layers}, {self.space.num_candidates})")
        self.allow_num_classes_mismatch = bool(allow_num_classes_mismatch)
        self.source = source

    # ---- which architectures the table may price ---------------------------------------------
    def _classes_ok(self, num_classes: int) -> bool:
        return num_classes == self.space.head.num_classes or self.allow_num_classes_mismatch

    def _mismatch(self, what: str) -> HwnasError:
        hint = ""
        if "classes" in what:
            hint = " (pass allow_num_classes_mismatch=True to price it as the 100-class network)"
        return HwnasError(
            f"device table {self.device!r} prices space {_space_description(self.space)}; "
            f"got {what}{hint}"
        )

    def choices_of(self, arch: ArchSpec) -> tuple[int, ...]:
        """The candidate index of each layer of ``arch`` in the table's space."""
        if not self._classes_ok(arch.head.num_classes):
            raise self._mismatch(f"an architecture with {arch.head.num_classes} classes")
        if arch.in_channels != 3:
            raise self._mismatch(f"an architecture with {arch.in_channels} input channels")
        # Dropout is the identity at inference and the class count only changes the FC (see the
        # module docstring), so both are normalised before the structural comparison.
        head = replace(arch.head, num_classes=self.space.head.num_classes,
                       dropout=self.space.head.dropout)
        try:
            return self.space.choices_of(replace(arch, head=head))
        except SpecError as error:
            raise self._mismatch(
                f"an architecture outside it ({arch.resolution} px): {error}"
            ) from None

    def _check_space(self, space: Any) -> None:
        reference = self.space
        same_network = (
            isinstance(space, LayerwiseSpace)
            and space.resolution == reference.resolution
            and space.stem == reference.stem
            and space.stages == reference.stages
            and space.head.out_channels == reference.head.out_channels
            and space.candidates == reference.candidates
            and space.e1_first_pointwise == reference.e1_first_pointwise
        )
        if not same_network:
            raise self._mismatch(f"space {space.name!r}")
        if not self._classes_ok(space.head.num_classes):
            raise self._mismatch(f"space {_space_description(space)} with different classes")

    # ---- CostModel ---------------------------------------------------------------------------
    def cost(self, arch: ArchSpec) -> float:
        """``base_all_k3_e1 + sum_l delta[l, choice_l]`` in ms."""
        return self.costs_choices(np.asarray([self.choices_of(arch)]))[0].item()

    def costs(self, archs) -> np.ndarray:
        """Costs of many architectures in one vectorised sum."""
        if len(archs) == 0:
            return np.zeros(0)
        return self.costs_choices(np.asarray([self.choices_of(arch) for arch in archs]))

    def choice_cost(self, space: Any) -> ChoiceCost:
        """The table's sum over ``space``'s choice matrices (the table's own network only)."""
        self._check_space(space)
        return ChoiceCost(self.costs_choices, self.name, self.unit)

    def costs_choices(self, choices: np.ndarray) -> np.ndarray:
        """Vectorised cost of ``[N, 22]`` candidate indices (e.g. a whole GA population)."""
        array = np.asarray(choices)
        if array.ndim == 1:
            array = array[None, :]
        layers, candidates = self.delta.shape
        integer = np.issubdtype(array.dtype, np.integer)
        if array.ndim != 2 or array.shape[1] != layers or not integer:
            raise HwnasError(f"device table {self.device!r}: choices must be an integer array "
                             f"[N, {layers}], got {array.dtype} with shape {np.shape(choices)}")
        if array.size and (array.min() < 0 or array.max() >= candidates):
            raise HwnasError(f"device table {self.device!r}: choices must lie in "
                             f"0..{candidates - 1}, got {array.min()}..{array.max()}")
        return self.base + self.delta[np.arange(layers), array].sum(axis=1)

    def layer_cost_matrix(self, space: LayerwiseSpace) -> LayerCostMatrix:
        """Exact: constant = ``base_all_k3_e1``, matrix = ``delta`` (``delta[:, 0] == 0``)."""
        self._check_space(space)
        return LayerCostMatrix(constant=self.base, matrix=self.delta.copy())


def load_device_table(
    name: str,
    data_dir: str | Path | None = None,
    *,
    allow_num_classes_mismatch: bool = False,
) -> DeviceTable:
    """The HW-NAS-Bench FBNet table of device ``name`` (one of :data:`DEVICE_NAMES`)."""
    if name not in DEVICE_NAMES:
        raise HwnasError(f"unknown device table {name!r} (known: {', '.join(DEVICE_NAMES)})")
    table = load_fbnet_lut(data_dir)
    _check_table_matches_space(table, get_space(TABLE_SPACE))
    metric = f"{name}_latency"
    if metric not in table.bases:
        raise HwnasError(f"{table.source.name} has no metric {metric!r} "
                         f"(metrics: {', '.join(table.metric_names)})")
    if table.units.get(metric) != "ms":
        raise HwnasError(f"{table.source.name}: metric {metric!r} has unit "
                         f"{table.units.get(metric)!r}, expected 'ms'")
    return DeviceTable(
        name, table.bases[metric], table.deltas[metric],
        allow_num_classes_mismatch=allow_num_classes_mismatch, source=str(table.source),
    )


class NB201Latency(CostModel):
    """Whole-network latency (ms) of every NAS-Bench-201 cell on one device: a column of
    ``nb201_latency.csv.gz`` (HW-NAS-Bench's raspi4 / pixel3 / eyeriss / fpga CIFAR-10 networks,
    HELP's pixel2 / 1080ti / gold_6226; docs/reference.md section 4), looked up by cell."""

    unit = "ms"

    def __init__(self, column: str, data_dir: str | Path | None = None, *,
                 values: np.ndarray | None = None) -> None:
        """The column ``column`` of the table, or, with ``values``, a column measured or
        predicted elsewhere under that name (one finite, non-negative latency per cell in NB201
        index order, e.g. this machine's LUT's prediction of every cell)."""
        self.name, self.data_dir, self.space = column, data_dir, NB201Space()
        if values is None:
            known = nb201_latency_columns(data_dir)
            if column not in known:
                raise HwnasError(f"unknown latency column {column!r} of nb201_latency.csv.gz "
                                 f"(known: {', '.join(known)})")
            values = nb201_latency(column, data_dir)
        self.values = np.asarray(values, dtype=float)
        cells = self.space.decisions.size
        if self.values.shape != (cells,) or not np.isfinite(self.values).all() or (
                self.values < 0).any():
            raise HwnasError(f"NB201 latencies {column!r} need one finite, non-negative value "
                             f"per cell ({cells}), got shape {self.values.shape}")

    def cost(self, arch: ArchSpec) -> float:
        return float(self.costs_choices(np.array([self.space.choices_of(arch)]))[0])

    def costs_choices(self, choices: np.ndarray) -> np.ndarray:
        return self.values[self.space.indices(choices, self.data_dir)]

    def choice_cost(self, space: Any) -> ChoiceCost:
        self._check(space)
        return ChoiceCost(self.costs_choices, self.name, self.unit)

    def layer_cost_matrix(self, space: Any) -> LayerCostMatrix:
        """The column's least-squares additive model over the six edges, fitted to every cell
        (:mod:`hwnas.cost.nb201_additive`): DNAS's LAT of mixing weights."""
        self._check(space)
        every = len(self.values)
        return NB201AdditiveLatency(self.values, every, name=self.name,
                                    data_dir=self.data_dir).layer_cost_matrix(space)

    def _check(self, space: Any) -> None:
        if space.name != self.space.name:
            raise HwnasError(f"NB201 latency {self.name!r} prices space nb201, not "
                             f"{space.name!r}")
