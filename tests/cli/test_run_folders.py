"""Run folders under concurrent, repeated and interrupted use, for ``search dnas``, ``search
chamnet`` and ``train``: a second writer is refused with one line naming the folder and the
holder's PID, nothing is overwritten; after ``kill -9`` of the first writer a rerun with
``--resume`` takes the folder over and finishes with the result of an uninterrupted run."""

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

from ..helpers import synthetic_cifar

ARCH = "r32:stem_k3_c8_s1:ir_k3_e1_c8_s1:ir_k3_e3_c16_s2:ir_k5_e3_c16_s1:head_c32_n10"
COMMANDS = {
    "dnas": ["search", "dnas", "--cost", "flops", "--subset-per-class", "10", "--batch-size",
             "10", "--epochs", "3", "--warmup-epochs", "1", "--samples", "2", "--seed", "4",
             "--threads", "1"],
    "chamnet": ["search", "chamnet", "--space", "nb201", "--cost",
                "nb201:hwnb_cifar10_raspi4_latency_ms", "--latency-ms", "20",
                "--evaluations", "16", "--initial", "6", "--batch-size", "2", "--seed", "3"],
    "train": ["train", ARCH, "--epochs", "3", "--subset-per-class", "4", "--test-per-class", "2",
              "--batch-size", "8", "--seed", "1", "--threads", "1"],
}
NEEDS_CIFAR = {"dnas", "train"}
#: runs the CLI with a pause after every history line, so that a test can act mid-run
SLOW_CLI = """
import sys, time
import hwnas.runs as runs
append = runs.RunFolder.append_history
def slow(self, records):
    append(self, records)
    print("appended", flush=True)
    time.sleep(30)
runs.RunFolder.append_history = slow
sys.argv = ["hwnas", *sys.argv[1:]]
from hwnas.cli import main
main()
"""
TIMING_KEYS = ("seconds", "wall_seconds", "phases")


def arguments(name: str, tmp_path: Path, out: Path) -> list[str]:
    extra = ["--cifar", str(tmp_path / "cifar")] if name in NEEDS_CIFAR else []
    return COMMANDS[name] + extra + ["--out", str(out)]


def result_of(out: Path) -> dict:
    data = json.loads((out / "result.json").read_text())
    return {key: value for key, value in data.items() if key not in TIMING_KEYS}


def start_slow(name: str, tmp_path: Path, out: Path) -> subprocess.Popen:
    """The command in a child process, paused after its first history line."""
    child = subprocess.Popen([sys.executable, "-c", SLOW_CLI, *arguments(name, tmp_path, out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    assert line.strip() == "appended", child.stderr.read()[-3000:]
    return child


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    synthetic_cifar(root / "cifar")
    return root


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_second_writer_refused_and_killed_run_taken_over(name, folders):
    tmp_path = folders / name
    tmp_path.mkdir()
    reference, out = tmp_path / "reference", tmp_path / "run"
    (tmp_path / "cifar").symlink_to(folders / "cifar")
    runner = CliRunner()
    straight = runner.invoke(app, arguments(name, tmp_path, reference))
    assert straight.exit_code == 0, straight.output

    child = start_slow(name, tmp_path, out)
    try:
        before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
        for extra in ([], ["--resume"]):
            second = runner.invoke(app, arguments(name, tmp_path, out) + extra)
            assert second.exit_code == 2
            assert second.output.count("\n") == 1 and second.output.startswith("error: ")
            assert f"run folder {out} is in use by process {child.pid}" in second.output
        assert {path.name: path.read_bytes() for path in out.iterdir()
                if path.is_file() and path.name != ".lock"} == \
            {key: value for key, value in before.items() if key != ".lock"}
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert not (out / "result.json").exists()

    again = runner.invoke(app, arguments(name, tmp_path, out))  # not resumed: refused
    assert again.exit_code == 2 and f"already holds a {name} run" in again.output
    resumed = runner.invoke(app, arguments(name, tmp_path, out) + ["--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert result_of(out) == result_of(reference)
    assert json.loads((out / ".lock").read_text() or "{}").get("pid") in (None, os.getpid())


def test_foreign_runs_are_refused_and_nothing_to_resume_is_said(folders, tmp_path):
    (tmp_path / "cifar").symlink_to(folders / "cifar")
    chamnet = tmp_path / "chamnet"
    runner = CliRunner()
    assert runner.invoke(app, arguments("chamnet", tmp_path, chamnet)).exit_code == 0
    stored = {path.name: path.read_bytes() for path in chamnet.iterdir()}
    for name in ("dnas", "train"):
        for extra, message in (([], "already holds a chamnet run"),
                               (["--resume"], "holds a chamnet run, not a")):
            refused = runner.invoke(app, arguments(name, tmp_path, chamnet) + extra)
            assert refused.exit_code == 2 and message in refused.output, refused.output
    assert {path.name: path.read_bytes() for path in chamnet.iterdir()
            if path.name != ".lock"} == {k: v for k, v in stored.items() if k != ".lock"}
    empty = runner.invoke(app, arguments("train", tmp_path, tmp_path / "empty") + ["--resume"])
    assert empty.exit_code == 2 and "nothing to resume in" in empty.output
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    refused = runner.invoke(app, arguments("dnas", tmp_path, stray))
    assert refused.exit_code == 2 and "is not empty (holds notes.txt)" in refused.output
    assert (stray / "notes.txt").read_text() == "mine"


def test_temporary_files_of_a_killed_write_are_removed(folders, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    leftover = out / ".result.json.k3j2.tmp"
    leftover.write_text("{half")
    started = time.monotonic()
    result = CliRunner().invoke(app, arguments("chamnet", tmp_path, out))
    assert result.exit_code == 0, result.output
    assert not leftover.exists() and time.monotonic() - started < 60
