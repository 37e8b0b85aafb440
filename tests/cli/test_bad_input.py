"""Bad input of issue 18's kinds: one `error:` line, exit 2, checked before any work."""

from __future__ import annotations

import os
import time

import pytest
from typer.testing import CliRunner

from hwnas.cli import app


def run(*arguments: str):
    return CliRunner().invoke(app, list(arguments))


def one_error(result, text: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], lines
    assert "Traceback" not in result.output


def test_an_out_under_a_file_is_refused_before_anything_is_measured(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    started = time.perf_counter()
    for command in (["lut", "build", "--space", "nb201"],
                    ["lut", "validate", "--lut", str(tmp_path / "lut.json")],
                    ["arch", "export", "fbnet_c"], ["train", "fbnet_c"],
                    ["search", "dnas", "--cost", "flops"], ["demo"]):
        one_error(run(*command, "--out", str(blocker / "out")),
                  f"{blocker} is a file, not a folder")
    assert time.perf_counter() - started < 20  # nothing was timed, trained or loaded
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("command, text", [
    (["lut", "validate", "--lut", "x.json", "--n", "1000000000"],
     "n must be an integer >= 2 and <= 10000, got 1000000000"),
    (["search", "chamnet", "--space", "nb201", "--cost", "nb201:help_pixel2_latency_ms",
      "--latency-ms", "20", "--evaluations", "1000000000"],
     "evaluations must be an integer >= 2 and <= 10000"),
    (["search", "dnas", "--cost", "flops", "--subset-per-class", "2"],
     "subset_per_class must be an integer >= 3 or none, got 2"),
    (["lut", "validate", "--lut", "x.json", "--seed", "-1"], "seed must be an integer >= 0"),
])
def test_counts_are_bounded_and_named(tmp_path, command, text):
    one_error(run(*command, "--out", str(tmp_path / "out")), text)
    assert not (tmp_path / "out").exists()


def test_unreadable_spec_files_are_one_error(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    one_error(run("arch", "show", str(deep)), "nested too deeply")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    one_error(run("arch", "show", str(binary)), "is not UTF-8 text")
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)
    one_error(run("arch", "show", str(pipe)), "is not a regular file")
