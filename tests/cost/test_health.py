"""Measurement health: CPU accounting, one warning per kind, and a real CPU hog."""

from __future__ import annotations

import time

import pytest

from hwnas.cost import health
from hwnas.cost.health import (
    CpuSample, Monitor, busy_now, is_busy, steadiness, usage_between, wait_quiet,
)


def test_other_use_is_busy_time_minus_our_own_per_second():
    before = CpuSample(wall_s=10.0, busy_s=100.0, steal_s=1.0, total_s=400.0, own_s=5.0)
    after = CpuSample(wall_s=12.0, busy_s=103.0, steal_s=1.4, total_s=404.0, own_s=6.0)
    usage = usage_between(before, after)
    assert usage["seconds"] == 2.0
    assert usage["other_cores"] == pytest.approx(1.0)  # 3 busy seconds, 1 of them ours
    assert usage["steal_pct"] == pytest.approx(10.0)
    assert usage_between(None, after)["other_cores"] is None


def test_each_kind_of_interference_warns_once_and_is_recorded():
    lines: list[str] = []
    monitor = Monitor("the test", lines.append)
    monitor.speed({"blocks": 20, "blocks_off": 1})
    assert lines == []  # 5 % of blocks off: within the allowance
    monitor.speed({"blocks": 20, "blocks_off": 6})
    monitor.speed({"blocks": 20, "blocks_off": 9})
    monitor.drift(3.0, "the build")
    monitor.drift(-27.0, "the build")
    assert len(lines) == 2 and all(line.startswith("warning: ") for line in lines)
    assert "6 of 20 timing blocks" in lines[0] and "27 % faster" in lines[1]
    summary = monitor.summary()
    assert [entry["kind"] for entry in summary["warnings"]] == ["speed", "drift"]
    assert summary["drift_pct"] == -27.0


@pytest.mark.skipif(health.cpu_sample() is None, reason="needs /proc/stat")
def test_a_cpu_hog_is_seen_and_wait_quiet_waits_for_its_end(hog):
    assert busy_now(1.0)["other_cores"] > 0.6
    started = time.monotonic()
    waited = wait_quiet(2.0, window_s=1.0)
    assert not waited["quiet"] and time.monotonic() - started >= 2.0
    lines: list[str] = []
    monitor = Monitor("the test", lines.append)
    monitor.before()
    monitor.start()
    time.sleep(1.0)
    monitor.stop("process 1/1")
    assert len(lines) == 1 and "busy before the test" in lines[0] and "--wait-quiet" in lines[0]
    assert monitor.summary()["other_cores_max"] > 0.6
    hog.kill()
    hog.wait()
    # quiet counters now (whether the host itself is steady is not this test's business)
    assert busy_now(1.0)["other_cores"] < 0.25


def test_the_steadiness_probe_reports_a_median_and_a_swing():
    probe = steadiness(windows=4, window_s=0.05)
    assert probe["probe_us"] > 0 and probe["swing"] >= 1.0
    assert is_busy({"other_cores": 0.0, "steal_pct": 0.0, "swing": 1.5})
    assert not is_busy({"other_cores": 0.0, "steal_pct": 0.0, "swing": 1.02})
