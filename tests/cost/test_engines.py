"""Engines: what they run and what they say about it (never timing accuracy)."""

from __future__ import annotations

import pytest
from torch import nn

from hwnas.arch.build import walk
from hwnas.cost.engines import (
    IDENTITY_FIELDS, OrtEngine, TorchEngine, check_same_engine, make_engine,
)
from hwnas.cost.opkey import space_keys
from hwnas.cost.timing import time_calls
from hwnas.cost.worker import item_runner
from hwnas.errors import HwnasError
from hwnas.spaces import get_space


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


@pytest.mark.parametrize("engine", [OrtEngine(), TorchEngine()])
def test_plan_items_rebuild_in_a_worker_what_the_engine_runs(engine, tmp_path):
    """A worker item (an exported graph for ORT, a spec for torch) runs the same layer and
    network as the engine's own runners: same output."""
    key = space_keys(get_space("fbnet-cifar"))[5]
    arch = get_space("fbnet-cifar").to_arch([3] * 22)
    for item, direct in ((engine.layer_item(key, tmp_path), engine.layer_runner(key.layer_shape())),
                         (engine.network_item(arch, tmp_path), engine.network_runner(arch))):
        assert not {"onnx", "op_key", "arch"}.isdisjoint(item)
        worker = item_runner(engine.plan(), item)
        assert _output(worker()).shape == _output(direct()).shape


def _output(value):
    import numpy as np

    return np.asarray(value[0] if isinstance(value, list) else value.detach())
