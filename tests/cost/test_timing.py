"""Timing calls: structure and math only, never timing accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.cost.lut_config import TimingSettings
from hwnas.cost.timing import TimingStats, combine_rounds, summarize, time_calls
from hwnas.errors import HwnasError


def test_summarize_known_samples():
    stats = summarize(np.arange(1, 11, dtype=float))
    assert stats.median_ms == pytest.approx(5.5)
    assert stats.p10_ms == pytest.approx(1.9)
    assert stats.p90_ms == pytest.approx(9.1)
    assert stats.count == 10


def test_time_calls_warms_up_then_times_each_call():
    calls = []
    stats = time_calls(lambda: calls.append(1), warmup=3, repeats=7)
    assert len(calls) == 10
    assert stats.count == 7
    assert 0 <= stats.p10_ms <= stats.median_ms <= stats.p90_ms


def test_combine_rounds_takes_median_of_medians_and_sums_counts():
    rounds = [TimingStats(1.0, 0.5, 2.0, 10), TimingStats(3.0, 1.0, 4.0, 10),
              TimingStats(2.0, 0.7, 9.0, 5)]
    assert combine_rounds(rounds) == TimingStats(2.0, 0.7, 4.0, 25)


@pytest.mark.parametrize("kwargs", [{"repeats": 0}, {"warmup": -1}, {"repeats": 1.5},
                                    {"warmup": True}])
def test_timing_settings_are_validated(kwargs):
    with pytest.raises(HwnasError):
        TimingSettings(**kwargs)


def test_stats_json_round_trip_and_malformed():
    stats = TimingStats(1.25, 1.0, 2.0, 9)
    assert TimingStats.from_dict(stats.to_dict()) == stats
    for bad in ({"median_ms": 1}, {**stats.to_dict(), "count": 0},
                {**stats.to_dict(), "p10_ms": "fast"}, {**stats.to_dict(), "median_ms": -1}):
        with pytest.raises(HwnasError):
            TimingStats.from_dict(bad)
