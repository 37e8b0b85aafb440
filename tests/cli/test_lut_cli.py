"""`hwnas lut`: a build killed with SIGKILL resumes without losing or repeating a measurement."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hwnas.cli import app
from hwnas.cost.lut import LatencyTable
from hwnas.spaces import get_space

from ..helpers import sample_arch

BUILD = ["lut", "build", "--space", "fbnet-cifar", "--engine", "torch", "--warmup", "0",
         "--repeats", "2", "--rounds", "2", "--calibration", "0"]
TOTAL = 110 * 2  # keys x rounds


def stored(path: Path) -> dict[str, list]:
    """Entry id -> rounds, from the file on disk (atomic writes: always a whole file)."""
    if not path.exists():
        return {}
    return {entry["id"]: entry["rounds"] for entry in json.loads(path.read_text())["entries"]}


@pytest.fixture(scope="module")
def resumed_lut(tmp_path_factory) -> tuple[Path, dict[str, list]]:
    """Start a build in a subprocess, SIGKILL it after >= 20 stored measurements, then run the
    same command again (in process)."""
    path = tmp_path_factory.mktemp("lut") / "lut.json"
    process = subprocess.Popen([sys.executable, "-m", "hwnas", *BUILD, "--out", str(path),
                                "--throttle-s", "0.03"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while sum(map(len, stored(path).values())) < 20 and time.monotonic() < deadline:
        assert process.poll() is None, "the build ended before it could be interrupted"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = stored(path)
    assert 20 <= sum(map(len, partial.values())) < TOTAL
    result = CliRunner().invoke(app, [*BUILD, "--out", str(path)])  # the same command again
    assert result.exit_code == 0, result.output
    return path, partial


def test_killed_build_resumes_keeping_every_entry_and_measuring_none_twice(resumed_lut):
    path, partial = resumed_lut
    final = stored(path)
    assert len(final) == 110
    assert all(len(rounds) == 2 for rounds in final.values())  # none measured a third time
    for key, rounds in partial.items():  # every stored measurement kept, unchanged
        assert final[key][:len(rounds)] == rounds
    assert LatencyTable.load(path).is_complete(get_space("fbnet-cifar"))


def test_rerun_of_a_complete_build_measures_nothing(resumed_lut):
    path, _ = resumed_lut
    before = stored(path)
    result = CliRunner().invoke(app, [*BUILD, "--out", str(path)])
    assert result.exit_code == 0, result.output
    assert stored(path) == before


def test_predict_prints_sum_of_entries(resumed_lut):
    path, _ = resumed_lut
    arch = sample_arch(get_space("fbnet-cifar")).to_string()
    result = CliRunner().invoke(app, ["lut", "predict", "--lut", str(path), arch, "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    table = LatencyTable.load(path)
    from hwnas.arch.spec import ArchSpec

    assert printed["predicted_ms"] == pytest.approx(table.cost(ArchSpec.from_string(arch)))
    assert printed["method"] == "raw_sum" and printed["scale"] == 1.0


def test_predict_refuses_another_space_in_one_line(resumed_lut):
    path, _ = resumed_lut
    arch = sample_arch(get_space("fbnet-imagenet")).to_string()
    result = CliRunner().invoke(app, ["lut", "predict", "--lut", str(path), arch])
    assert result.exit_code == 2
    assert "fbnet-cifar at 32 px" in result.output and "224 px" in result.output
    assert "Traceback" not in result.output


def test_resume_with_another_engine_is_refused(resumed_lut):
    path, _ = resumed_lut
    result = CliRunner().invoke(app, ["lut", "build", "--space", "fbnet-cifar", "--engine", "ort",
                                      "--out", str(path)])
    assert result.exit_code == 2 and "onnxruntime" in result.output and "torch" in result.output


def test_malformed_lut_is_one_error(tmp_path):
    path = tmp_path / "lut.json"
    path.write_text('{"format": "hwnas-latency-lut", "version": 1}')
    result = CliRunner().invoke(app, ["lut", "predict", "--lut", str(path), "fbnet_c"])
    assert result.exit_code == 2 and "malformed LUT file" in result.output


def test_validate_writes_metrics_and_plot(resumed_lut, tmp_path):
    path, _ = resumed_lut
    result = CliRunner().invoke(app, ["lut", "validate", "--lut", str(path), "--n", "3",
                                      "--repeats", "1", "--rounds", "1", "--warmup", "0",
                                      "--out", str(tmp_path / "v")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "v" / "result.json").read_text())
    assert report["n"] == 3 and len(report["networks"]) == 3
    assert report["label"] == "torch-1t-channels_last"
    assert {"mape", "within_5pct", "within_10pct", "spearman", "kendall"} <= set(report)
    assert (tmp_path / "v" / "scatter.png").read_bytes()[:4] == b"\x89PNG"
    assert len((tmp_path / "v" / "history.jsonl").read_text().splitlines()) == 3
    again = CliRunner().invoke(app, ["lut", "validate", "--lut", str(path), "--n", "3",
                                     "--out", str(tmp_path / "v")])
    assert again.exit_code == 2 and "already holds a lut_validate run" in again.output
    resumed = CliRunner().invoke(app, ["lut", "validate", "--lut", str(path), "--n", "3",
                                       "--repeats", "1", "--rounds", "1", "--warmup", "0",
                                       "--out", str(tmp_path / "v"), "--resume"])
    assert resumed.exit_code == 0, resumed.output  # every network journalled: none timed again
    assert json.loads((tmp_path / "v" / "result.json").read_text())["networks"] == \
        report["networks"]
