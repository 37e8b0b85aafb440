"""The NB201 DNAS benchmark's scoring: device specificity on a constructed case, and a smoke
run end to end."""

from __future__ import annotations

import json

import numpy as np

from benchmarks.experiments import nb201_supernet
from hwnas.spaces.nb201 import NB201Space

SPACE = NB201Space()


def test_specificity_counts_the_devices_whose_own_cell_is_best_where_feasible():
    """Two devices, two cells: cell A (index 0) is more accurate; on device x both cells fit,
    on device y only y's own cell B fits. So x's own cell (A) is best on x, y's (B) on y."""
    truth = np.zeros(15625)
    truth[0], truth[1] = 90.0, 80.0
    latency = {"x": np.full(15625, 1.0), "y": np.full(15625, 1.0)}
    latency["y"][0] = 5.0  # cell A does not fit y's budget
    cells = {"x": SPACE.format(SPACE.choices_at(0)), "y": SPACE.format(SPACE.choices_at(1))}
    rows = {device: {"cell": cell, "limit_ms": 2.0} for device, cell in cells.items()}
    result = nb201_supernet.specificity(rows, latency, truth, SPACE)
    assert result["matrix"] == {"x": {"x": 90.0, "y": 80.0}, "y": {"x": None, "y": 80.0}}
    assert result["own_cell_best"] == {"x": True, "y": True}
    assert result["devices_own_best"] == 2
    rows["x"]["cell"] = cells["y"]  # x's answer is now the worse cell: not best on x
    rows["y"]["cell"] = cells["x"]  # y's answer does not fit y at all
    result = nb201_supernet.specificity(rows, latency, truth, SPACE)
    assert result["own_cell_best"] == {"x": False, "y": False}


def test_the_quick_run_scores_every_device_and_budget(tmp_path):
    output = nb201_supernet.main(["--quick", "--out", str(tmp_path)])
    written = json.loads((tmp_path / "nb201_supernet_quick.json").read_text())
    assert written["summary"] == output["summary"]
    (budget,) = written["budgets"]
    assert set(budget["devices"]) == {"hwnb_cifar10_pixel3_latency_ms",
                                      "help_1080ti_1_latency_ms"}
    for row in budget["devices"].values():
        assert row["feasible"] and row["regret"] >= 0
        assert row["best_feasible"] >= row["random_feasible_accuracy"]
    assert (tmp_path / "nb201_supernet_quick.png").stat().st_size > 0
