"""``hwnas search chamnet`` on tabular NB201 and its one-line errors."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from hwnas.cli import app

DEVICE = "hwnb_cifar10_pixel3_latency_ms"


def test_search_chamnet_writes_a_run_directory(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "search", "chamnet", "--space", "nb201", "--cost", f"nb201:{DEVICE}",
        "--latency-ms", "15", "--latency-ms", "25", "--evaluations", "16", "--seed", "2",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("config.json", "history.jsonl", "result.json", "pareto.png"):
        assert (out / name).exists()
    stored = json.loads((out / "result.json").read_text())
    assert len(stored["best"]) == 2
    for best, limit in zip(stored["best"], (15, 25)):
        assert best["costs"][0][0] <= limit
    assert len((out / "history.jsonl").read_text().splitlines()) == 16


def test_bad_values_are_one_line_errors(tmp_path):
    runner = CliRunner()
    cases = [
        (["--space", "nope", "--cost", "flops"], "unknown search space 'nope' for chamnet"),
        (["--space", "nb201", "--cost", "nb201:nope"], "unknown latency column 'nope'"),
        (["--space", "nb201", "--cost", "raspi4"], "cannot price space 'nb201'"),
        (["--space", "chamnet-cifar", "--cost", "raspi4"], "prices space 'fbnet-cifar100'"),
        (["--space", "nb201", "--cost", f"nb201:{DEVICE}", "--evaluator", "x"],
         "unknown --evaluator 'x'"),
    ]
    for options, message in cases:
        result = runner.invoke(app, ["search", "chamnet", *options, "--latency-ms", "10",
                                     "--evaluations", "12", "--out", str(tmp_path / "r")])
        assert result.exit_code == 2, result.output
        assert message in result.output and result.output.count("\n") == 1
    infeasible = runner.invoke(app, ["search", "chamnet", "--space", "nb201", "--cost",
                                     f"nb201:{DEVICE}", "--latency-ms", "0.001",
                                     "--evaluations", "12", "--out", str(tmp_path / "i")])
    assert infeasible.exit_code == 2 and "smallest seen" in infeasible.output


def test_energy_predictor_budget(tmp_path):
    from hwnas.data.tables import nb201_latency
    from hwnas.spaces.nb201 import NB201Space

    # "Measured" energy: here the eyeriss latency column of 40 cells stands in for energy.
    space, eyeriss = NB201Space(), nb201_latency("hwnb_cifar10_eyeriss_latency_ms")
    rows = np.random.default_rng(0).choice(15625, 40, replace=False)
    measurements = [{"arch": space.format(space.choices_at(int(i))), "energy": float(eyeriss[i])}
                    for i in rows]
    path = tmp_path / "energy.json"
    path.write_text(json.dumps({"unit": "mJ", "measurements": measurements}))
    limit = float(np.median(eyeriss))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "search", "chamnet", "--space", "nb201", "--cost", f"nb201:{DEVICE}",
        "--latency-ms", "30", "--energy", f"{path}:{limit}", "--evaluations", "14",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    best = json.loads((out / "result.json").read_text())["best"][0]
    assert best["costs"][0][1] <= limit  # the predicted energy of the answer is within budget
    bad = CliRunner().invoke(app, [
        "search", "chamnet", "--space", "nb201", "--cost", f"nb201:{DEVICE}",
        "--latency-ms", "30", "--energy", f"{path}:abc", "--evaluations", "14",
        "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "FILE:LIMIT" in bad.output


def test_cifar_training_evaluator_trains_each_network_once(tmp_path):
    from ..helpers import synthetic_cifar

    cifar = synthetic_cifar(tmp_path / "cifar")
    out = tmp_path / "run"
    command = ["search", "chamnet", "--space", "chamnet-cifar", "--cost", "flops",
               "--latency-ms", "1e12", "--evaluator", "cifar10", "--cifar", str(cifar),
               "--evaluations", "3", "--initial", "2", "--batch-size", "1",
               "--evaluator-epochs", "1", "--train-per-class", "8", "--valid-per-class", "2",
               "--ga-population", "4", "--ga-generations", "1", "--pool-size", "8",
               "--out", str(out)]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    trainings = sorted((out / "trainings").iterdir())
    assert len(history) == 3 and len(trainings) == len({entry["arch"] for entry in history})
    for folder in trainings:
        assert json.loads((folder / "config.json").read_text())["recipe"]["epochs"] == 1
        assert json.loads((folder / "result.json").read_text())["train_images"] == 80
