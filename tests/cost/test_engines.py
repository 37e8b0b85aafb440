"""Timing statistics and engines: structure and math only, never timing accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from hwnas.arch.build import walk
from hwnas.cost.engines import (
    IDENTITY_FIELDS, OrtEngine, TimingSettings, TimingStats, TorchEngine, check_same_engine,
    combine_rounds, make_engine, summarize, time_calls, time_interleaved,
)
from hwnas.errors import HwnasError
from hwnas.spaces import get_space


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
    combined = combine_rounds(rounds)
    assert combined == TimingStats(2.0, 0.7, 4.0, 25)


def test_interleaved_rounds_alternate_items():
    order: list[str] = []
    settings = TimingSettings(warmup=1, repeats=2, rounds=3)
    results = time_interleaved([lambda: order.append("a"), lambda: order.append("b")], settings)
    assert len(results) == 2 and all(r.count == 6 for r in results)
    assert order == (["a"] * 3 + ["b"] * 3) * 3


@pytest.mark.parametrize("kwargs", [{"repeats": 0}, {"warmup": -1}, {"rounds": 0},
                                    {"repeats": 1.5}, {"rounds": True}])
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


@pytest.mark.parametrize("engine", [TorchEngine(threads=1, layout="channels_last"),
                                    TorchEngine(threads=1), OrtEngine(threads=2)])
def test_engines_run_a_layer_and_record_metadata(engine):
    layer = walk(get_space("fbnet-cifar").to_arch([3] * 22))[1]
    stats = time_calls(engine.layer_runner(layer), warmup=1, repeats=3)
    assert stats.count == 3
    metadata = engine.metadata()
    assert all(name in metadata for name in IDENTITY_FIELDS)
    assert metadata["threads"] == engine.threads and metadata["batch_size"] == 1
    assert metadata["layout"] == engine.layout


def test_ort_runs_an_identity_graph():
    run = OrtEngine().runner(nn.Identity(), 8, 4)
    assert run()[0].shape == (1, 8, 4, 4)


def test_engine_options_are_checked():
    with pytest.raises(HwnasError, match="layout"):
        make_engine("ort", layout="channels_last")
    with pytest.raises(HwnasError, match="tensorrt"):
        make_engine("tensorrt")
    with pytest.raises(HwnasError, match="threads"):
        make_engine("torch", threads=0)
    assert make_engine("torch").layout == "channels_last"
    assert make_engine("torch", threads=2).label == "torch-2t-channels_last"
    assert make_engine("ort").label == "ort-1t"


def test_engine_mismatch_names_both():
    first, second = OrtEngine(threads=1).metadata(), OrtEngine(threads=2).metadata()
    check_same_engine(first, dict(first), "same")
    with pytest.raises(HwnasError, match=r"threads.*1 thread.*2 thread"):
        check_same_engine(first, second, "resume")
