"""``hwnas search dmasking`` end to end on a tiny synthetic CIFAR-10 binary distribution.

The data is synthetic on purpose (the command's plumbing is under test, not accuracy). The
command is mounted on a root group like the real one, so the test does not depend on the lead
having registered it in ``hwnas.cli.search`` yet.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from hwnas.arch.spec import ArchSpec
from hwnas.cli import HwnasGroup
from hwnas.cli.dmasking import dmasking_command
from hwnas.dnas.result import SearchResult
from hwnas.spaces import get_space


def make_app() -> typer.Typer:
    root = typer.Typer(cls=HwnasGroup, add_completion=False, pretty_exceptions_enable=False)
    search = typer.Typer()
    search.command("dmasking")(dmasking_command)
    search.command("unused")(lambda: None)  # a group of one command would swallow its name
    root.add_typer(search, name="search")
    return root


@pytest.fixture()
def cifar_folder(tmp_path):
    folder = tmp_path / "cifar" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = np.repeat(np.arange(10, dtype=np.uint8), 1)
        pixels = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        np.concatenate([labels[:, None], pixels], axis=1).tofile(folder / f"{name}.bin")
    return tmp_path / "cifar"


def test_search_dmasking_writes_a_resumable_run_directory(tmp_path, cifar_folder):
    out = tmp_path / "run"
    arguments = ["search", "dmasking", "--cost", "flops", "--epochs", "1", "--warmup-epochs",
                 "0", "--subset-per-class", "5", "--batch-size", "4", "--samples", "2",
                 "--cifar", str(cifar_folder), "--out", str(out)]
    runner = CliRunner()
    result = runner.invoke(make_app(), arguments)
    assert result.exit_code == 0, result.output
    for name in ("config.json", "history.jsonl", "theta.json", "checkpoint.pt", "result.json",
                 "theta_final.png", "theta_epochs.png"):
        assert (out / name).exists(), name
    stored = SearchResult.load(out / "result.json")
    assert get_space("dmasking-cifar").contains(ArchSpec.from_string(stored.argmax.arch))
    assert json.loads((out / "config.json").read_text())["search"]["cost_mode"] == "effective"
    again = runner.invoke(make_app(), arguments)
    assert again.exit_code == 2 and "already holds a search" in again.output
    resumed = runner.invoke(make_app(), arguments + ["--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert SearchResult.load(out / "result.json") == stored


def test_bad_values_are_one_line_errors(tmp_path):
    runner = CliRunner()
    cases = [
        (["--cost", "nope.json"], "is not a LUT file"),
        (["--cost", "flops", "--space", "fbnet-cifar"], "unknown --space 'fbnet-cifar'"),
        (["--cost", "flops", "--cost-mode", "mean"], "cost mode must be one of"),
    ]
    for options, message in cases:
        result = runner.invoke(make_app(), ["search", "dmasking", *options,
                                            "--out", str(tmp_path / "r")])
        assert result.exit_code == 2, result.output
        assert message in result.output and result.output.count("\n") == 1
