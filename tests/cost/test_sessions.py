"""Session-robust timing: the two-way fit on data with known answers, and worker processes."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.cost.engines import OrtEngine
from hwnas.cost.health import Monitor
from hwnas.cost.lut_config import TimingSettings
from hwnas.cost.lutbuild import measure_networks
from hwnas.cost.sessions import SessionPlan, fit_latencies, relative_drift
from hwnas.errors import HwnasError
from hwnas.spaces import get_space

from ..helpers import sample_archs


def synthetic_rows(latency: dict[str, float], speed: dict[str, float], noise: float = 0.0,
                   seed: int = 0) -> list[dict]:
    """Every item timed once in every block: latency x the block's speed x lognormal noise."""
    rng = np.random.default_rng(seed)
    return [{"item": item, "block": block, "median_ms": value * factor
             * float(np.exp(noise * rng.standard_normal()))}
            for block, factor in speed.items() for item, value in latency.items()]


def test_the_fit_recovers_latencies_at_the_fast_speed_of_the_machine():
    latency = {f"item{i}": 0.05 * (i + 1) for i in range(12)}
    # seven blocks at the machine's own speed, two slowed by 30 %, one by 40 %
    speed = {**{f"b{i}": 1.0 for i in range(7)}, "b7": 1.3, "b8": 1.3, "b9": 1.4}
    fit = fit_latencies(synthetic_rows(latency, speed))
    for item, value in latency.items():
        assert fit.latency_ms[item] == pytest.approx(value, rel=1e-9)
        assert fit.spread_pct[item] == pytest.approx(0.0, abs=1e-9)
    assert fit.block_effect_pct["b7"] == pytest.approx(30.0)
    assert fit.block_effect_pct["b9"] == pytest.approx(40.0)
    summary = fit.summary()
    assert summary["blocks"] == 10 and summary["blocks_off"] == 3
    assert summary["fast_speed_pct"] == pytest.approx(0.0, abs=1e-9)
    assert fit.sessions["item0"] == 10


def test_runs_on_a_bimodal_machine_agree_where_a_median_anchor_would_not():
    """A machine slowed by 25 % in 60 % of one run's blocks and 40 % of another's: anchored on
    the median block the runs would differ by 25 %; anchored on the fast blocks they agree."""
    latency = {f"item{i}": 0.1 * (i + 1) for i in range(10)}
    first = {f"b{i}": 1.25 if i < 6 else 1.0 for i in range(10)}
    second = {f"b{i}": 1.25 if i < 4 else 1.0 for i in range(10)}
    one = fit_latencies(synthetic_rows(latency, first, noise=0.005, seed=3))
    two = fit_latencies(synthetic_rows(latency, second, noise=0.005, seed=4))
    for item, value in latency.items():
        assert one.latency_ms[item] == pytest.approx(value, rel=0.02)
        assert two.latency_ms[item] == pytest.approx(value, rel=0.02)
    assert one.summary()["fast_speed_pct"] == pytest.approx(-20.0, abs=1.0)
    assert relative_drift(one.latency_ms, two.latency_ms) == pytest.approx(0.0, abs=2.0)


def test_a_plain_median_is_fooled_by_slow_blocks_the_fit_is_not():
    """Items 0-4 were timed in more slow blocks than normal ones, so their plain median is
    slow; the blocks they share with items 5-9 tell the fit how slow those blocks were."""
    first, second = [f"item{i}" for i in range(5)], [f"item{i}" for i in range(5, 10)]
    latency = {item: 1.0 + 0.1 * index for index, item in enumerate(first + second)}
    layout = {**{f"all{i}": (first + second, 1.0) for i in range(3)},
              **{f"second{i}": (second, 1.0) for i in range(3)},
              **{f"slow{i}": (first, 1.5) for i in range(4)}}
    rng = np.random.default_rng(1)
    rows = [{"item": item, "block": block,
             "median_ms": latency[item] * factor * float(np.exp(0.01 * rng.standard_normal()))}
            for block, (items, factor) in layout.items() for item in items]
    plain = {item: np.median([row["median_ms"] for row in rows if row["item"] == item])
             for item in first}
    assert all(plain[item] > 1.4 * latency[item] for item in first)
    fit = fit_latencies(rows)
    assert all(fit.latency_ms[item] == pytest.approx(value, rel=0.03)
               for item, value in latency.items())
    assert fit.summary()["blocks_off"] == 4


def test_the_fit_shrugs_off_a_single_wild_session():
    latency = {f"item{i}": 0.2 for i in range(8)}
    speed = {f"b{i}": 1.0 for i in range(6)}
    rows = synthetic_rows(latency, speed, noise=0.01, seed=2)
    rows[3]["median_ms"] *= 5  # one session caught in something
    fit = fit_latencies(rows)
    assert all(value == pytest.approx(0.2, rel=0.02) for value in fit.latency_ms.values())
    with pytest.raises(HwnasError):
        fit_latencies([])


def test_relative_drift_is_the_median_change_of_shared_items():
    assert relative_drift({"a": 1.1, "b": 2.2, "c": 9.0}, {"a": 1.0, "b": 2.0}) == \
        pytest.approx(10.0)
    assert relative_drift({"a": 1.0}, {"b": 1.0}) is None


def test_plans_are_checked():
    for bad in ({"processes": 0}, {"sessions": 0}, {"block_size": 0}):
        with pytest.raises(HwnasError):
            SessionPlan(**bad)


def test_networks_timed_in_groups_of_worker_processes_and_resumed():
    """Two groups of two worker processes (ONNX Runtime): every network and reference gets
    one fit per group and one together; a second call given the first one's sessions runs no
    process again and fits the same numbers."""
    archs = sample_archs(get_space("fbnet-cifar"), 3, seed=4)
    references = sample_archs(get_space("fbnet-cifar"), 1, seed=5)
    plan, timing = SessionPlan(processes=2, sessions=1, block_size=2), TimingSettings(1, 2)
    done: dict[int, list] = {}
    progress = []
    times = measure_networks(archs, OrtEngine(), timing, plan, monitor=Monitor("test"),
                             references=references, groups=2,
                             on_done=lambda index, rows: done.__setitem__(index, rows),
                             on_progress=lambda *args: progress.append(args))
    assert sorted(done) == [0, 1, 2, 3] and len(times.groups) == 2
    names = {arch.to_string() for arch in archs + references}
    for fit in (*times.groups, times.together):
        assert set(fit.latency_ms) == names
    assert all(times.together.sessions[name] == 4 for name in names)
    assert ("timing", 8, 8) in progress and ("export", 4, 4) in progress
    again = measure_networks(archs, OrtEngine(), timing, plan, monitor=Monitor("test"),
                             references=references, groups=2, done=done,
                             on_done=lambda index, rows: pytest.fail("timed again"))
    assert again.together.latency_ms == times.together.latency_ms
