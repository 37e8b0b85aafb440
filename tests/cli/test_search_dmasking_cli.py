"""``hwnas search dmasking`` end to end on a tiny synthetic CIFAR-10 binary distribution (the
data is synthetic on purpose: the command's plumbing is under test, not accuracy)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hwnas.arch.spec import ArchSpec
from hwnas.cli import app
from hwnas.dnas.result import SearchResult
from hwnas.spaces import get_space


def make_app():
    return app


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
    assert again.exit_code == 2 and "already holds a dmasking run" in again.output
    resumed = runner.invoke(make_app(), arguments + ["--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert SearchResult.load(out / "result.json") == stored


def test_bad_values_are_one_line_errors(tmp_path):
    runner = CliRunner()
    cases = [
        (["--cost", "nope.json"], "is not a LUT file"),
        (["--cost", "flops", "--space", "fbnet-cifar"], "unknown search space 'fbnet-cifar'"),
        (["--cost", "flops", "--cost-mode", "mean"], "cost_mode must be one of"),
    ]
    for options, message in cases:
        result = runner.invoke(make_app(), ["search", "dmasking", *options,
                                            "--out", str(tmp_path / "r")])
        assert result.exit_code == 2, result.output
        assert message in result.output and result.output.count("\n") == 1
