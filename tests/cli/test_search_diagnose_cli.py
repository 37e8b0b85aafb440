"""``hwnas search diagnose`` on a tiny search's run directory, and its one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hwnas.cli import app

from .test_search_dnas_cli import _cifar_folder


@pytest.mark.parametrize("weight_sharing", ["independent", "nested"])
def test_diagnose_writes_the_supernet_signal_of_a_run(tmp_path, weight_sharing):
    cifar = str(_cifar_folder(tmp_path))
    out = tmp_path / "run"
    search = CliRunner().invoke(app, [
        "search", "dnas", "--cost", "pixel3", "--cifar", cifar, "--subset-per-class", "10",
        "--batch-size", "10", "--epochs", "1", "--warmup-epochs", "0", "--samples", "2",
        "--weight-sharing", weight_sharing, "--out", str(out)])
    assert search.exit_code == 0, search.output
    config = json.loads((out / "config.json").read_text())["search"]
    assert config["weight_sharing"] == weight_sharing
    result = CliRunner().invoke(app, ["search", "diagnose", str(out), "--cifar", cifar,
                                      "--paths", "20", "--images", "10", "--named-images", "20"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "supernet_signal.json").read_text())
    assert report["paths"] == 20 and report["path_cross_entropy"]["sd"] >= 0
    assert set(report["supernet_accuracy"]) == {"all-k5_e6", "all-skip", "argmax"}
    assert "additive fit" in result.output


def test_diagnose_refuses_what_is_not_an_fbnet_run(tmp_path):
    missing = CliRunner().invoke(app, ["search", "diagnose", str(tmp_path)])
    assert missing.exit_code == 2 and "not a DNAS run folder" in missing.output
    assert "Traceback" not in missing.output
    (tmp_path / "config.json").write_text(json.dumps({"space": {"name": "chamnet"}}))
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    other = CliRunner().invoke(app, ["search", "diagnose", str(tmp_path)])
    assert other.exit_code == 2 and "'chamnet'" in other.output
    assert "Traceback" not in other.output
