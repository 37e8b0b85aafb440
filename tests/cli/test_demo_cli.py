"""The main job end to end in its quick mode: every step runs, the report reads its files, and a
second run reuses them instead of measuring or training again."""

import json

from typer.testing import CliRunner

from hwnas.cli import app


def test_quick_demo_writes_a_report_and_resumes(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
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
    again = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "done before" in again.output
    assert {path: path.stat().st_mtime_ns for path in modified} == modified
