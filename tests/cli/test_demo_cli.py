"""The main job end to end in its quick mode (NB201, and the FBNet job): every step runs, the
report reads its files, and a second run reuses them instead of measuring or training again."""

import json

import numpy as np
from typer.testing import CliRunner

from hwnas.cli import app
from hwnas.spaces.nb201 import NB201Space


def test_quick_nb201_demo_judges_its_answers_by_the_table_and_resumes(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    for heading in ("## This CPU's table of every cell", "## Answers per budget",
                    "## Latency on this machine"):
        assert heading in report
    cells = json.loads((out / "cpu_table.json").read_text())
    latency, accuracy = np.array(cells["latency_ms"]), np.array(cells["accuracy"])
    assert len(latency) == 15625 and (latency > 0).all()
    summary = json.loads((out / "summary.json").read_text())["budgets"]
    assert [row["percentile"] for row in summary] == [25, 75]
    space = NB201Space()
    for row in summary:
        assert row["latency_ms"] == np.percentile(latency, row["percentile"])
        feasible = latency <= row["latency_ms"]
        assert row["answers"]["best feasible"]["accuracy"] == accuracy[feasible].max()
        for who, answer in row["answers"].items():
            index = space.index_of(space.parse(answer["arch"]))
            assert answer["accuracy"] == accuracy[index]
            assert answer["regret"] >= 0 and answer["predicted_ms"] == latency[index]
        assert row["answers"]["chamnet"]["feasible"]
    timed = json.loads((out / "latency.json").read_text())["networks"]
    assert {row["name"] for row in timed} == {f"p{row['percentile']:g} {who}"
                                              for row in summary for who in row["answers"]}
    assert all(row["measured_ms"] > 0 for row in timed)
    assert (out / "accuracy_latency.png").stat().st_size > 0

    modified = {path: path.stat().st_mtime_ns for path in (
        out / "latency.json", out / "lut.json", out / "chamnet" / "result.json",
        out / "dnas-0" / "result.json")}
    again = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "done before" in again.output
    assert {path: path.stat().st_mtime_ns for path in modified} == modified


def test_an_unknown_job_is_one_error():
    result = CliRunner().invoke(app, ["demo", "--job", "darts"])
    assert result.exit_code == 2
    assert "error: unknown --job 'darts' (known: nb201, fbnet)" in result.output


def test_quick_fbnet_demo_writes_a_report_and_resumes(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--job", "fbnet", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    for heading in ("## Latency on this machine", "## Search", "## Accuracy after"):
        assert heading in report
    latency = json.loads((out / "latency.json").read_text())
    assert [row["name"] for row in latency["networks"]][:2] == [
        "searched (within target)", "searched (argmax)"]
    assert all(row["measured_ms"] > 0 for row in latency["networks"])
    assert (out / "search" / "theta_final.png").stat().st_size > 0
    assert (out / "accuracy_latency.png").stat().st_size > 0

    modified = {path: path.stat().st_mtime_ns for path in (out / "latency.json",
                                                             out / "search" / "result.json")}
    again = CliRunner().invoke(app, ["demo", "--job", "fbnet", "--quick", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "done before" in again.output
    assert {path: path.stat().st_mtime_ns for path in modified} == modified
