"""`hwnas lut`: a build killed with SIGKILL resumes without losing or repeating a worker
process's measurements; predict, validate, and their one-line refusals."""

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

BUILD = ["lut", "build", "--space", "fbnet-cifar", "--engine", "ort", "--warmup", "0",
         "--repeats", "2", "--processes", "3", "--sessions", "1", "--calibration", "2",
         "--correction", "6",
         "--network-warmup", "0", "--network-repeats", "1"]
PROCESSES = 3


def stored(path: Path) -> dict[str, list]:
    """Entry id -> sessions, from the file on disk (atomic writes: always a whole file)."""
    if not path.exists():
        return {}
    return {entry["id"]: entry["sessions"] for entry in json.loads(path.read_text())["entries"]}


def processes_done(path: Path) -> list[int]:
    return json.loads(path.read_text())["build"]["processes_done"] if path.exists() else []


@pytest.fixture(scope="module")
def resumed_lut(tmp_path_factory) -> tuple[Path, dict[str, list]]:
    """Start a build in a subprocess, SIGKILL it once one worker process is stored, then run
    the same command again (in process)."""
    path = tmp_path_factory.mktemp("lut") / "lut.json"
    process = subprocess.Popen([sys.executable, "-m", "hwnas", *BUILD, "--out", str(path),
                                "--throttle-s", "30"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not processes_done(path) and time.monotonic() < deadline:
        assert process.poll() is None, "the build ended before it could be interrupted"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = stored(path)
    assert processes_done(path) == [0]
    assert all(len(sessions) == 1 for sessions in partial.values())
    result = CliRunner().invoke(app, [*BUILD, "--out", str(path)])  # the same command again
    assert result.exit_code == 0, result.output
    return path, partial


def test_killed_build_resumes_keeping_every_entry_and_measuring_none_twice(resumed_lut):
    path, partial = resumed_lut
    final = stored(path)
    # layer processes 0-2, then the calibration networks' own processes 3-5
    assert len(final) == 110 and sorted(processes_done(path)) == list(range(2 * PROCESSES))
    assert all(len(sessions) == PROCESSES for sessions in final.values())  # none timed twice
    networks = json.loads(path.read_text())["build"]["networks"]
    assert all(len(item["sessions"]) == PROCESSES and
               {row["process"] for row in item["sessions"]} == {3, 4, 5} for item in networks)
    for key, sessions in partial.items():  # every stored measurement kept, unchanged
        assert final[key][:len(sessions)] == sessions
    table = LatencyTable.load(path)
    assert table.is_complete(get_space("fbnet-cifar")) and len(table.build.references) == 2
    # 2 calibration + 6 correction networks fit scale/offset and the per-key correction
    assert len(networks) == 8 and len(table.calibration.points) == 8
    record = table.correction  # applied only when it predicts the left-out networks better
    assert record.networks == 8 and (record.keys_corrected > 0) == record.applied
    assert table.build.conditions and table.build.speed["blocks"] > 0


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
    assert printed["method"] == table.calibration.method


def test_predict_refuses_another_space_in_one_line(resumed_lut):
    path, _ = resumed_lut
    arch = sample_arch(get_space("fbnet-imagenet")).to_string()
    result = CliRunner().invoke(app, ["lut", "predict", "--lut", str(path), arch])
    assert result.exit_code == 2
    assert "fbnet-cifar at 32 px" in result.output and "224 px" in result.output
    assert "Traceback" not in result.output


def test_resume_with_another_engine_is_refused(resumed_lut):
    path, _ = resumed_lut
    result = CliRunner().invoke(app, ["lut", "build", "--space", "fbnet-cifar", "--engine", "torch",
                                      "--out", str(path)])
    assert result.exit_code == 2 and "onnxruntime" in result.output and "torch" in result.output


def test_malformed_lut_is_one_error(tmp_path):
    path = tmp_path / "lut.json"
    path.write_text('{"format": "hwnas-latency-lut", "version": 1}')
    result = CliRunner().invoke(app, ["lut", "predict", "--lut", str(path), "fbnet_c"])
    assert result.exit_code == 2 and "malformed LUT file" in result.output


def test_validate_writes_metrics_and_plot(resumed_lut, tmp_path):
    path, _ = resumed_lut
    options = ["--n", "3", "--repeats", "1", "--warmup", "0", "--processes", "1",
               "--sessions", "1"]
    result = CliRunner().invoke(app, ["lut", "validate", "--lut", str(path), *options,
                                      "--out", str(tmp_path / "v")])
    assert result.exit_code == 0, result.output
    assert "noise ceiling" in result.output and "reference networks" in result.output
    report = json.loads((tmp_path / "v" / "result.json").read_text())
    assert report["n"] == 3 and len(report["networks"]) == 3
    assert report["label"] == "ort-1t"
    assert {"mape", "within_5pct", "within_10pct", "spearman", "kendall"} <= set(report)
    assert report["ceiling"]["n"] == 3 and len(report["per_group"]) == 2
    assert report["drift_pct"] is not None and "processes" in report["conditions"]
    assert all(len(row["group_ms"]) == 2 for row in report["networks"])
    assert (tmp_path / "v" / "scatter.png").read_bytes()[:4] == b"\x89PNG"
    assert len((tmp_path / "v" / "history.jsonl").read_text().splitlines()) == 2
    again = CliRunner().invoke(app, ["lut", "validate", "--lut", str(path), "--n", "3",
                                     "--out", str(tmp_path / "v")])
    assert again.exit_code == 2 and "already holds a lut_validate run" in again.output
    resumed = CliRunner().invoke(app, ["lut", "validate", "--lut", str(path), *options,
                                       "--out", str(tmp_path / "v"), "--resume"])
    assert resumed.exit_code == 0, resumed.output  # every process journalled: none run again
    assert len((tmp_path / "v" / "history.jsonl").read_text().splitlines()) == 2
    assert json.loads((tmp_path / "v" / "result.json").read_text())["networks"] == \
        report["networks"]


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs /proc/stat")
def test_a_cpu_hog_is_warned_about_and_wait_quiet_waits(resumed_lut, tmp_path, hog):
    path, _ = resumed_lut
    started = time.monotonic()
    result = CliRunner().invoke(app, ["lut", "validate", "--lut", str(path), "--n", "2",
                                      "--repeats", "1", "--warmup", "0", "--processes", "1",
                                      "--sessions", "1", "--groups", "1", "--wait-quiet", "2",
                                      "--out", str(tmp_path / "v")])
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 2.0
    assert "warning: the machine is busy before the validation (other processes used" in \
        result.output and "still busy after --wait-quiet" in result.output
    conditions = json.loads((tmp_path / "v" / "result.json").read_text())["conditions"]
    assert conditions["wait"]["waited_s"] >= 2.0 and not conditions["wait"]["quiet"]
    assert conditions["other_cores_max"] > 0.5
    build = CliRunner().invoke(app, ["lut", "build", "--space", "fbnet-cifar", "--warmup", "0",
                                     "--repeats", "1", "--processes", "1", "--sessions", "1",
                                     "--calibration", "0", "--correction", "0",
                                     "--out", str(tmp_path / "lut.json")])
    assert build.exit_code == 0, build.output
    assert "warning: the machine is busy before the LUT build" in build.output
    stored = json.loads((tmp_path / "lut.json").read_text())["build"]["conditions"][0]
    assert stored["other_cores_max"] > 0.5 and stored["warnings"]
