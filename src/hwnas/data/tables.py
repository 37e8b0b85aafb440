"""Pickle-free loaders for the real-device and benchmark tables in the shared data folder.

Four files (their sources and layouts: docs/reference.md section 4):

* ``nb201_latency.csv.gz``: NAS-Bench-201 whole-network latency (ms) of all 15,625 cells on
  HW-NAS-Bench's raspi4/pixel3/eyeriss/fpga (CIFAR-10 network) and HELP's pixel2/1080ti/gold_6226;
* ``nb201_accuracy.csv.gz``: NAS-Bench-201 CIFAR-10 accuracies (%), same row order;
* ``fbnet_5000_latency.csv.gz``: 5,000 FBNet-space architectures (CIFAR-100 setting) with
  HW-NAS-Bench LUT sums and HELP's measured whole-network latencies (ms);
* ``fbnet_lut_cifar100.json``: the HW-NAS-Bench FBNet per-layer table as ``base + delta``.

Every loader takes an optional ``data_dir`` (else ``$HWNAS_DATA``, else ``../shared/data``, see
:mod:`hwnas.data.paths`), validates the layout and raises :class:`HwnasError` naming the file and
the problem. Metric columns are not hard-coded: any extra numeric column of the same layout is
loaded, and :func:`nb201_latency_columns` & co. list what a file holds so that options can accept
any of them. Tables are cached per file path; the returned arrays are read-only.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.data.paths import data_file
from hwnas.errors import HwnasError
from hwnas.io import read_json

NB201_LATENCY_FILE = "nb201_latency.csv.gz"
NB201_ACCURACY_FILE = "nb201_accuracy.csv.gz"
FBNET_LATENCY_FILE = "fbnet_5000_latency.csv.gz"
FBNET_LUT_FILE = "fbnet_lut_cifar100.json"

NB201_ROWS = 15_625  # 5 operations ** 6 edges
FBNET_SAMPLE_ROWS = 5_000  # HELP's data/fbnet/arch.pt
FBNET_LAYERS = 22
FBNET_OPS = 9


@dataclass(frozen=True)
class MetricTable:
    """Rows of architectures with named float columns.

    ``keys`` identify the rows: NB201 ``arch_str`` strings (row i = NB201 index i), or FBNet
    ``op_idx_list`` strings. ``choices`` is ``[rows, layers]`` integer choices where the file
    gives them (the FBNet table), else ``None``.
    """

    source: Path
    keys: tuple[str, ...]
    columns: dict[str, np.ndarray]
    choices: np.ndarray | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @property
    def num_rows(self) -> int:
        return len(self.keys)

    def column(self, name: str) -> np.ndarray:
        """One metric column (read-only float64); an unknown name raises listing the known ones."""
        if name not in self.columns:
            raise HwnasError(
                f"{self.source.name} has no column {name!r} "
                f"(columns: {', '.join(self.columns)})"
            )
        return self.columns[name]


@dataclass(frozen=True)
class FBNetLayerTable:
    """The HW-NAS-Bench FBNet per-layer table: ``cost = base + sum_l delta[l, arch[l]]`` (ms).

    ``bases[metric]`` is the cost of the all-``k3_e1`` network (stem, head, pool and FC included);
    ``deltas[metric]`` is ``[22, 9]`` with ``delta[l, 0] == 0``. ``setting`` holds the network
    setting the table prices (resolution, classes, widths, strides, ...), as in the JSON file.
    """

    source: Path
    op_names: tuple[str, ...]
    setting: dict[str, Any]
    bases: dict[str, float]
    deltas: dict[str, np.ndarray]
    units: dict[str, str]
    lut_keys: tuple[tuple[str, ...], ...]

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(self.bases)


# ---- CSV parsing ------------------------------------------------------------------------------
def _read_csv_gz(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with gzip.open(path, "rb") as compressed:
            text = io.TextIOWrapper(compressed, encoding="utf-8", newline="")
            rows = list(csv.reader(text))
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise HwnasError(f"{path.name}: cannot read as gzip-compressed CSV ({error})") from None
    if not rows:
        raise HwnasError(f"{path.name}: file is empty (expected a header row)")
    return rows[0], rows[1:]


def _float_columns(
    path: Path, header: list[str], rows: list[list[str]], names: list[str]
) -> dict[str, np.ndarray]:
    columns = {}
    for name in names:
        position = header.index(name)
        values = np.empty(len(rows))
        for row_number, row in enumerate(rows):
            try:
                values[row_number] = float(row[position])
            except ValueError:
                raise HwnasError(
                    f"{path.name}: column {name!r} row {row_number} is not a number: "
                    f"{row[position]!r}"
                ) from None
        if not np.isfinite(values).all():
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise HwnasError(f"{path.name}: column {name!r} row {bad} is not finite")
        values.setflags(write=False)
        columns[name] = values
    return columns


def _check_layout(
    path: Path, header: list[str], rows: list[list[str]], required: tuple[str, ...],
    expected_rows: int,
) -> list[str]:
    """Check the id columns, the row count and the row widths; return the metric column names."""
    missing = [name for name in required if name not in header]
    if missing:
        raise HwnasError(
            f"{path.name}: missing column(s) {', '.join(missing)} (header: {', '.join(header)})"
        )
    if len(rows) != expected_rows:
        raise HwnasError(f"{path.name}: expected {expected_rows} rows, found {len(rows)}")
    for row_number, row in enumerate(rows):
        if len(row) != len(header):
            raise HwnasError(
                f"{path.name}: row {row_number} has {len(row)} fields, the header has "
                f"{len(header)}"
            )
    metrics = [name for name in header if name not in required]
    if not metrics:
        raise HwnasError(f"{path.name}: no metric columns besides {', '.join(required)}")
    return metrics


def _check_row_ids(path: Path, header: list[str], rows: list[list[str]], name: str) -> None:
    position = header.index(name)
    for row_number, row in enumerate(rows):
        if row[position] != str(row_number):
            raise HwnasError(
                f"{path.name}: column {name!r} must count 0, 1, 2, ... in file order; row "
                f"{row_number} has {row[position]!r}"
            )


# ---- NAS-Bench-201 ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def load_nb201_table(path: Path) -> MetricTable:
    """An NB201 table file (latency or accuracy layout) by path; the cells' strings are parsed
    by :mod:`hwnas.spaces.nb201`."""
    header, rows = _read_csv_gz(path)
    metrics = _check_layout(path, header, rows, ("arch_index", "arch_str"), NB201_ROWS)
    _check_row_ids(path, header, rows, "arch_index")
    position = header.index("arch_str")
    keys = tuple(row[position] for row in rows)
    if len(set(keys)) != NB201_ROWS:
        raise HwnasError(f"{path.name}: arch_str values are not all distinct")
    return MetricTable(path, keys, _float_columns(path, header, rows, metrics))


def load_nb201_latency(data_dir: str | Path | None = None) -> MetricTable:
    """``nb201_latency.csv.gz``: row = NB201 index; columns like ``hwnb_cifar10_raspi4_latency_ms``
    (ms)."""
    return load_nb201_table(data_file(NB201_LATENCY_FILE, data_dir).resolve())


def load_nb201_accuracy(data_dir: str | Path | None = None) -> MetricTable:
    """``nb201_accuracy.csv.gz``: rows = NB201 index, columns like ``cifar10_test_200ep`` (%)."""
    return load_nb201_table(data_file(NB201_ACCURACY_FILE, data_dir).resolve())


def nb201_latency_columns(data_dir: str | Path | None = None) -> tuple[str, ...]:
    """The latency columns of ``nb201_latency.csv.gz`` (all its metric columns)."""
    return load_nb201_latency(data_dir).column_names


def nb201_accuracy_columns(data_dir: str | Path | None = None) -> tuple[str, ...]:
    """The accuracy columns of ``nb201_accuracy.csv.gz``."""
    return load_nb201_accuracy(data_dir).column_names


def nb201_latency(device_column: str, data_dir: str | Path | None = None) -> np.ndarray:
    """Whole-network latency (ms) of every NB201 cell on one device: ``result[nb201_index]``
    (the cost model over it: :class:`hwnas.cost.device_table.NB201Latency`)."""
    return load_nb201_latency(data_dir).column(device_column)


def nb201_accuracy(column: str, data_dir: str | Path | None = None) -> np.ndarray:
    """Accuracy (%) of every NB201 cell for one column, e.g. ``cifar10_test_200ep``."""
    return load_nb201_accuracy(data_dir).column(column)


# ---- FBNet space ------------------------------------------------------------------------------
def _parse_choices(path: Path, keys: tuple[str, ...]) -> np.ndarray:
    choices = np.empty((len(keys), FBNET_LAYERS), dtype=np.int64)
    for row_number, key in enumerate(keys):
        parts = key.split("-")
        if len(parts) != FBNET_LAYERS or not all(part.isdigit() for part in parts):
            raise HwnasError(
                f"{path.name}: row {row_number} op_idx_list {key!r} is not {FBNET_LAYERS} "
                "op indices joined by '-'"
            )
        choices[row_number] = [int(part) for part in parts]
    if choices.max() >= FBNET_OPS:
        bad = int(np.flatnonzero(choices.max(axis=1) >= FBNET_OPS)[0])
        raise HwnasError(
            f"{path.name}: row {bad} op_idx_list {keys[bad]!r} has an op index above "
            f"{FBNET_OPS - 1}"
        )
    choices.setflags(write=False)
    return choices


@functools.lru_cache(maxsize=4)
def _load_fbnet_latency(path: Path) -> MetricTable:
    header, rows = _read_csv_gz(path)
    metrics = _check_layout(
        path, header, rows, ("sample_index", "op_idx_list"), FBNET_SAMPLE_ROWS
    )
    _check_row_ids(path, header, rows, "sample_index")
    position = header.index("op_idx_list")
    keys = tuple(row[position] for row in rows)
    return MetricTable(
        path, keys, _float_columns(path, header, rows, metrics), _parse_choices(path, keys)
    )


def load_fbnet_latency(data_dir: str | Path | None = None) -> MetricTable:
    """``fbnet_5000_latency.csv.gz``: 5,000 FBNet archs (``choices`` [5000, 22]) and latencies."""
    return _load_fbnet_latency(data_file(FBNET_LATENCY_FILE, data_dir).resolve())


def fbnet_latency_columns(data_dir: str | Path | None = None) -> tuple[str, ...]:
    """The latency columns of ``fbnet_5000_latency.csv.gz``."""
    return load_fbnet_latency(data_dir).column_names


def _require(path: Path, document: dict, key: str) -> Any:
    if key not in document:
        raise HwnasError(f"{path.name}: missing field {key!r}")
    return document[key]


def _delta_matrix(path: Path, metric: str, value: Any) -> np.ndarray:
    try:
        matrix = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise HwnasError(f"{path.name}: metrics.{metric}.delta is not a numeric matrix") from None
    if matrix.shape != (FBNET_LAYERS, FBNET_OPS):
        raise HwnasError(
            f"{path.name}: metrics.{metric}.delta has shape {matrix.shape}, expected "
            f"({FBNET_LAYERS}, {FBNET_OPS})"
        )
    if not np.isfinite(matrix).all():
        raise HwnasError(f"{path.name}: metrics.{metric}.delta has non-finite values")
    matrix.setflags(write=False)
    return matrix


@functools.lru_cache(maxsize=4)
def _load_fbnet_lut(path: Path) -> FBNetLayerTable:
    document = read_json(path, "FBNet layer table")
    if not isinstance(document, dict):
        raise HwnasError(f"{path.name}: expected a JSON object at the top level")
    op_names = tuple(_require(path, document, "op_names"))
    if len(op_names) != FBNET_OPS:
        raise HwnasError(f"{path.name}: op_names has {len(op_names)} entries, expected {FBNET_OPS}")
    setting_keys = ("search_space", "dataset_setting", "num_classes", "input_resolution",
                    "stem_channels", "stem_stride", "header_channels", "num_layer_list",
                    "channel_list", "stride_list")
    setting = {key: _require(path, document, key) for key in setting_keys}
    metrics = _require(path, document, "metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise HwnasError(f"{path.name}: 'metrics' must be a non-empty object")
    bases, deltas, units = {}, {}, {}
    for metric, entry in metrics.items():
        base = entry.get("base_all_k3_e1") if isinstance(entry, dict) else None
        if isinstance(base, bool) or not isinstance(base, (int, float)) or not math.isfinite(base):
            raise HwnasError(f"{path.name}: metrics.{metric}.base_all_k3_e1 is not a number")
        bases[metric] = float(base)
        deltas[metric] = _delta_matrix(path, metric, entry.get("delta"))
        units[metric] = str(entry.get("unit", ""))
    layers = _require(path, document, "layers")
    if not isinstance(layers, list) or len(layers) != FBNET_LAYERS:
        raise HwnasError(f"{path.name}: 'layers' must list {FBNET_LAYERS} layers")
    lut_keys = tuple(tuple(layer.get("lut_keys", ())) for layer in layers)
    return FBNetLayerTable(path, op_names, setting, bases, deltas, units, lut_keys)


def load_fbnet_lut(data_dir: str | Path | None = None) -> FBNetLayerTable:
    """``fbnet_lut_cifar100.json``: per-metric ``base_all_k3_e1`` and ``delta`` [22, 9] (ms)."""
    return _load_fbnet_lut(data_file(FBNET_LUT_FILE, data_dir).resolve())
