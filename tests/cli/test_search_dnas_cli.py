"""``hwnas search dnas`` end to end on a tiny synthetic CIFAR-10 binary distribution (the
command's plumbing is under test, not accuracy), and its one-line errors."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from hwnas.arch.spec import ArchSpec
from hwnas.cli import app
from hwnas.spaces import get_space


def _cifar_folder(tmp_path, per_class: int = 3):
    folder = tmp_path / "cifar" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
        pixels = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        np.concatenate([labels[:, None], pixels], axis=1).tofile(folder / f"{name}.bin")
    return tmp_path / "cifar"


def test_search_dnas_with_a_device_table_writes_a_run_directory(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "search", "dnas", "--cost", "pixel3", "--cifar", str(_cifar_folder(tmp_path)),
        "--subset-per-class", "10", "--batch-size", "10", "--epochs", "1",
        "--warmup-epochs", "0", "--samples", "3", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "result.json").read_text())
    assert saved["cost_name"].startswith("pixel3") and saved["epochs"] == 1
    assert get_space("fbnet-cifar").contains(ArchSpec.from_string(saved["argmax"]["arch"]))
    assert (out / "theta_final.png").exists() and (out / "history.jsonl").exists()
    transitions = get_space("fbnet-cifar").transition_layers
    k3_e6 = get_space("fbnet-cifar").candidates.index("k3_e6")
    assert all(saved["argmax"]["choices"][layer] == k3_e6 for layer in transitions)
    again = CliRunner().invoke(app, ["search", "dnas", "--cost", "pixel3", "--out", str(out),
                                     "--cifar", str(_cifar_folder(tmp_path / "x"))])
    assert again.exit_code == 2 and "Traceback" not in again.output


def test_search_dnas_bad_cost_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["search", "dnas", "--cost", "no-such-lut.json"])
    assert result.exit_code == 2
    assert "no-such-lut.json" in result.output and "Traceback" not in result.output


def test_search_dnas_warm_starts_an_absolute_target_search_over_every_layer(tmp_path):
    cifar = str(_cifar_folder(tmp_path))
    common = ["search", "dnas", "--cost", "pixel3", "--cifar", cifar, "--subset-per-class", "10",
              "--batch-size", "10", "--epochs", "1", "--samples", "2", "--fix-transitions",
              "none"]
    warm = CliRunner().invoke(app, common + ["--warmup-epochs", "1", "--out",
                                             str(tmp_path / "warm")])
    assert warm.exit_code == 0, warm.output
    result = CliRunner().invoke(app, common + [
        "--warmup-epochs", "0", "--target-latency", "3.0", "--target-form", "absolute",
        "--theta-estimator", "reinforce", "--paths-per-batch", "2",
        "--warm-start", str(tmp_path / "warm" / "checkpoint.pt"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())["search"]
    assert config["target_form"] == "absolute" and config["fixed_layers"] == []
    assert config["theta_estimator"] == "reinforce" and config["paths_per_batch"] == 2
    assert config["warm_start"].endswith("checkpoint.pt")
    bad = CliRunner().invoke(app, common + ["--warmup-epochs", "0", "--target-latency", "3.0",
                                            "--target-form", "both",
                                            "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "'both'" in bad.output and "Traceback" not in bad.output
    mismatched = CliRunner().invoke(app, common + [
        "--warmup-epochs", "0", "--weight-sharing", "nested",
        "--warm-start", str(tmp_path / "warm" / "checkpoint.pt"), "--out", str(tmp_path / "n")])
    assert mismatched.exit_code == 2 and "'nested'" in mismatched.output
    assert "Traceback" not in mismatched.output


def test_search_dnas_nb201_searches_the_cells_for_a_device_column(tmp_path):
    """The cell DNAS from the command line: a device column as LAT (its additive edge model),
    an exact within-target answer, and cells as the answers."""
    from hwnas.cost.device_table import NB201Latency

    out, column = tmp_path / "cells", "hwnb_cifar10_pixel3_latency_ms"
    target = float(np.quantile(NB201Latency(column).values, 0.25))
    result = CliRunner().invoke(app, [
        "search", "dnas-nb201", "--cost", f"nb201:{column}", "--target-latency", str(target),
        "--cifar", str(_cifar_folder(tmp_path)), "--subset-per-class", "3", "--batch-size", "10",
        "--epochs", "1", "--warmup-epochs", "0", "--samples", "2", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "result.json").read_text())
    space = get_space("nb201")
    assert space.contains(ArchSpec.from_string(saved["argmax"]["arch"]))
    assert saved["within_target"]["cost"] <= target
    wrong = CliRunner().invoke(app, ["search", "dnas-nb201", "--cost", "pixel3",
                                     "--out", str(tmp_path / "w")])
    assert wrong.exit_code == 2 and "cannot price space 'nb201'" in wrong.output
