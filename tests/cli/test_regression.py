"""Fixed-seed quick runs of the four run commands give the ``result.json`` recorded in
``tests/cli/regression/`` (written by the code before the one-design refactor).

Every float is compared to 1e-6 (probabilities, costs, accuracies); wall-clock fields are not
compared. The CIFAR-10 data is a tiny synthetic binary distribution (the plumbing is under
test, not accuracy); ChamNet runs on the real NAS-Bench-201 tables. To re-record after an
intended change of results: ``HWNAS_WRITE_REGRESSION=1 pytest tests/cli/test_regression.py``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hwnas.cli import app

from ..helpers import synthetic_cifar

EXPECTED = Path(__file__).parent / "regression"
#: wall-clock numbers differ from run to run
TIMING_KEYS = {"seconds", "wall_seconds", "phases"}
ARCH = "r32:stem_k3_c8_s1:ir_k3_e1_c8_s1:ir_k3_e3_c16_s2:ir_k5_e3_c16_s1:head_c32_n10"

RUNS = {
    "dnas": ["search", "dnas", "--cost", "pixel3", "--subset-per-class", "10", "--batch-size",
             "10", "--epochs", "2", "--warmup-epochs", "1", "--samples", "4", "--seed", "3",
             "--target-latency", "30", "--threads", "1"],
    "dnas-reinforce": ["search", "dnas", "--cost", "flops", "--subset-per-class", "10",
                       "--batch-size", "10", "--epochs", "2", "--warmup-epochs", "1",
                       "--samples", "3", "--seed", "1", "--fix-transitions", "none",
                       "--theta-estimator", "reinforce", "--paths-per-batch", "3",
                       "--target-latency", "150", "--target-form", "absolute",
                       "--threads", "1"],
    "dmasking": ["search", "dmasking", "--cost", "flops", "--subset-per-class", "5",
                 "--batch-size", "5", "--epochs", "2", "--warmup-epochs", "1", "--samples", "3",
                 "--seed", "2", "--target-latency", "60", "--threads", "1"],
    "chamnet-nb201": ["search", "chamnet", "--space", "nb201", "--cost",
                      "nb201:hwnb_cifar10_pixel3_latency_ms", "--latency-ms", "15",
                      "--latency-ms", "25", "--evaluations", "20", "--seed", "2"],
    "train": ["train", ARCH, "--epochs", "2", "--subset-per-class", "4", "--test-per-class",
              "2", "--batch-size", "8", "--seed", "2", "--threads", "1"],
}
NEEDS_CIFAR = {"dnas", "dnas-reinforce", "dmasking", "train"}


def assert_same(expected: Any, actual: Any, where: str = "result") -> None:
    """``actual`` holds every value of ``expected`` (floats to 1e-6; extra keys allowed)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            if key not in TIMING_KEYS:
                assert key in actual, f"{where}.{key} is missing"
                assert_same(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for index, (left, right) in enumerate(zip(expected, actual)):
            assert_same(left, right, f"{where}[{index}]")
    elif isinstance(expected, float) and not isinstance(actual, bool):
        assert isinstance(actual, (int, float)), where
        assert math.isclose(expected, actual, rel_tol=1e-6, abs_tol=1e-6), \
            f"{where}: {actual!r} != {expected!r}"
    else:
        assert expected == actual, f"{where}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("name", sorted(RUNS))
def test_quick_run_gives_the_recorded_result(name, tmp_path):
    arguments = list(RUNS[name]) + ["--out", str(tmp_path / "run")]
    if name in NEEDS_CIFAR:
        arguments += ["--cifar", str(synthetic_cifar(tmp_path / "cifar"))]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    actual = json.loads((tmp_path / "run" / "result.json").read_text())
    if name == "train":  # result.json holds only accuracies: the losses are compared too
        history = (tmp_path / "run" / "history.jsonl").read_text().splitlines()
        actual["history"] = [json.loads(line) for line in history]
    expected_file = EXPECTED / f"{name}.json"
    if os.environ.get("HWNAS_WRITE_REGRESSION"):
        expected_file.parent.mkdir(exist_ok=True)
        recorded = {key: value for key, value in actual.items() if key not in TIMING_KEYS}
        expected_file.write_text(json.dumps(recorded, indent=1) + "\n")
    assert_same(json.loads(expected_file.read_text()), actual)
