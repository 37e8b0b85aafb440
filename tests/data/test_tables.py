"""The table loaders read the real shared data and refuse malformed files with a clear message."""

from __future__ import annotations

import csv
import gzip
import json

import numpy as np
import pytest

from hwnas.data import tables
from hwnas.errors import HwnasError


def test_nb201_latency_layout_and_known_values():
    table = tables.load_nb201_latency()
    assert table.num_rows == tables.NB201_ROWS
    assert "hwnb_cifar10_raspi4_latency_ms" in table.column_names
    assert "help_gold_6226_latency_ms" in table.column_names
    # HW-NAS-Bench README / example notebook values for arch 0 (data README, section 1a).
    assert table.column("hwnb_cifar10_raspi4_latency_ms")[0] == pytest.approx(10.481976820010459)
    assert table.column("hwnb_cifar10_fpga_latency_ms")[1] == pytest.approx(5.31536)
    assert table.keys[0].startswith("|avg_pool_3x3~0|+|nor_conv_1x1~0|")


def test_nb201_tables_share_row_order_and_known_optimum():
    latency, accuracy = tables.load_nb201_latency(), tables.load_nb201_accuracy()
    assert latency.keys == accuracy.keys
    test_200 = accuracy.column("cifar10_test_200ep")
    # NAS-Bench-201's best CIFAR-10 test accuracy, 94.3733 (archs 6111 and 13714).
    assert test_200.max() == pytest.approx(94.3733, abs=1e-4)
    assert set(np.flatnonzero(np.isclose(test_200, test_200.max()))) == {6111, 13714}


def test_column_lists_and_lookup():
    assert tables.nb201_accuracy_columns() == (
        "cifar10_test_200ep", "cifar10valid_valid_12ep", "cifar10_test_12ep",
    )
    assert len(tables.nb201_latency_columns()) == 7
    assert len(tables.fbnet_latency_columns()) == 7
    latency = tables.nb201_latency("help_pixel2_latency_ms")
    assert latency.shape == (tables.NB201_ROWS,) and not latency.flags.writeable
    with pytest.raises(HwnasError, match="no column 'gpu'.*help_pixel2_latency_ms"):
        tables.nb201_latency("gpu")


def test_fbnet_latency_choices():
    table = tables.load_fbnet_latency()
    assert table.choices.shape == (tables.FBNET_SAMPLE_ROWS, 22)
    assert table.choices[0].tolist() == [int(op) for op in table.keys[0].split("-")]
    assert table.choices.min() == 0 and table.choices.max() == 8


def test_fbnet_lut_fields():
    lut = tables.load_fbnet_lut()
    assert lut.metric_names == ("raspi4_latency", "pixel3_latency", "eyeriss_latency",
                                "fpga_latency")
    assert lut.setting["num_classes"] == 100 and lut.setting["input_resolution"] == 32
    for metric in lut.metric_names:
        assert lut.deltas[metric].shape == (22, 9)
        assert (lut.deltas[metric][:, 0] == 0).all()
    assert lut.lut_keys[0][8] == "Skip_H32_W32_Cin16_Cout16_stride1"


def _write_csv_gz(path, header, rows):
    with gzip.open(path, "wt", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def test_wrong_row_count_is_named(tmp_path):
    _write_csv_gz(tmp_path / tables.NB201_LATENCY_FILE, ["arch_index", "arch_str", "x_ms"],
                  [[0, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 1.0]])
    with pytest.raises(HwnasError, match="nb201_latency.csv.gz: expected 15625 rows, found 1"):
        tables.load_nb201_latency(tmp_path)


def test_missing_column_is_named(tmp_path):
    _write_csv_gz(tmp_path / tables.FBNET_LATENCY_FILE, ["sample_index", "latency"], [[0, 1.0]])
    with pytest.raises(HwnasError, match="fbnet_5000_latency.csv.gz: missing column.*op_idx_list"):
        tables.load_fbnet_latency(tmp_path)


def test_bad_value_and_bad_gzip_are_named(tmp_path):
    rows = [[index, "-".join(["0"] * 22), "fast" if index == 7 else 1.0] for index in range(5000)]
    _write_csv_gz(tmp_path / tables.FBNET_LATENCY_FILE, ["sample_index", "op_idx_list", "a_ms"],
                  rows)
    with pytest.raises(HwnasError, match="column 'a_ms' row 7 is not a number: 'fast'"):
        tables.load_fbnet_latency(tmp_path)
    (tmp_path / tables.NB201_ACCURACY_FILE).write_text("not gzip")
    with pytest.raises(HwnasError, match="nb201_accuracy.csv.gz: cannot read as gzip"):
        tables.load_nb201_accuracy(tmp_path)


def test_bad_lut_json_is_named(tmp_path):
    document = json.loads(tables.data_file(tables.FBNET_LUT_FILE).read_text())
    document["metrics"]["raspi4_latency"]["delta"] = [[0.0] * 9] * 21
    (tmp_path / tables.FBNET_LUT_FILE).write_text(json.dumps(document))
    with pytest.raises(HwnasError, match=r"raspi4_latency.delta has shape \(21, 9\)"):
        tables.load_fbnet_lut(tmp_path)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(HwnasError, match="missing data file nb201_latency.csv.gz"):
        tables.load_nb201_latency(tmp_path)
