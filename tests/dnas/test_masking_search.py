"""``run_dmasking``: run directory, bit-exact resume, and the cost pressure it should follow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from .dnas_helpers import run_dmasking, synthetic_batches
from .masking_helpers import linear_latency, synthetic_table, tiny_masking_space
from hwnas.arch.spec import ArchSpec
from hwnas.cost.flops import FlopsCost
from hwnas.dnas.result import SearchResult
from hwnas.errors import HwnasError
from hwnas.spaces.fbnet import fbnet_space

WEIGHT_BATCHES = synthetic_batches(4, 8, seed=1)
THETA_BATCHES = synthetic_batches(2, 8, seed=2)
SETTINGS = dict(epochs=3, warmup_epochs=1, seed=7, checkpoint_every=3, num_samples=5, plots=False)


class Killed(Exception):
    pass


def kill_at(global_step):
    def progress(event):
        if event.global_step == global_step:
            raise Killed(event)
    return progress


def search(run_dir, **overrides):
    space = tiny_masking_space()
    cost = synthetic_table(space, linear_latency)
    return run_dmasking(space, cost, WEIGHT_BATCHES, THETA_BATCHES, run_dir=run_dir,
                        **{**SETTINGS, **overrides})


def test_search_writes_the_dnas_run_directory(tmp_path):
    result = search(tmp_path, plots=True)
    for name in ("config.json", "history.jsonl", "theta.json", "checkpoint.pt", "result.json",
                 "theta_final.png", "theta_epochs.png"):
        assert (tmp_path / name).exists(), name
    assert SearchResult.load(tmp_path / "result.json") == result
    space = tiny_masking_space()
    arch = ArchSpec.from_string(result.argmax.arch)
    assert space.choices_of(arch) == result.argmax.choices
    assert arch.resolution == space.resolutions[result.argmax.choices[0]]
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert len(history) == 3 and history[0]["theta_loss"] is None
    assert history[2]["theta_latency"] > 0
    costs = [derived.cost for derived in result.samples]
    assert costs == sorted(costs)
    theta = json.loads((tmp_path / "theta.json").read_text())
    assert theta["decisions"][0] == "resolution" and len(theta["probabilities"]) == 3


@pytest.mark.parametrize("mode, estimator, killed_at", [
    ("sampled", "gumbel", 7), ("soft", "gumbel", 10), ("sampled", "reinforce", 10)])
def test_killed_and_resumed_search_equals_uninterrupted(tmp_path, mode, estimator, killed_at):
    settings = dict(mode=mode, theta_estimator=estimator)
    reference = search(tmp_path / "reference", **settings)
    run_dir = tmp_path / "killed"
    with pytest.raises(Killed):
        search(run_dir, progress=kill_at(killed_at), **settings)
    assert not (run_dir / "result.json").exists()
    resumed = search(run_dir, resume=True, **settings)
    assert resumed == reference
    theta = torch.load(Path(run_dir) / "checkpoint.pt", weights_only=True)["model"]["theta"]
    reference_path = tmp_path / "reference" / "checkpoint.pt"
    reference_theta = torch.load(reference_path, weights_only=True)["model"]["theta"]
    assert torch.equal(theta, reference_theta)


def test_a_finished_run_is_not_overwritten(tmp_path):
    search(tmp_path, epochs=1, warmup_epochs=0)
    with pytest.raises(HwnasError, match="already holds a dmasking run"):
        search(tmp_path, epochs=1, warmup_epochs=0)


@pytest.mark.parametrize("estimator", ["gumbel", "reinforce"])
def test_strong_cost_pressure_picks_the_cheapest_resolution_and_widths(tmp_path, estimator):
    """With the budget at the cheapest network and beta large, the loss is dominated by FLOPs:
    theta must move to the smallest resolution and the narrowest width of every stage (the
    known optimum of the cost; every stage's narrow option is cheaper by 5-20 %), whether its
    gradient is Gumbel's or REINFORCE's (which samples the resolution and widths too)."""
    space = tiny_masking_space()
    cheapest = FlopsCost().cost(space.to_arch([0] * space.decisions.count))
    result = run_dmasking(space, FlopsCost(), WEIGHT_BATCHES, THETA_BATCHES * 3,
                          run_dir=tmp_path, epochs=4, warmup_epochs=0, theta_lr=0.2, beta=30.0,
                          target_latency=cheapest, seed=3, num_samples=0, plots=False,
                          theta_estimator=estimator, paths_per_batch=3)
    argmax = result.argmax.choices
    assert argmax[0] == 0
    assert argmax[1:1 + space.num_stages] == (0,) * space.num_stages
    probabilities = np.asarray(result.probabilities)
    assert result.expected_cost < 0.8 * FlopsCost().cost(space.to_arch(space.largest_choices()))
    assert probabilities[0, 0] > 0.6


def test_bad_arguments_are_errors(tmp_path):
    with pytest.raises(HwnasError, match="DMasking space"):
        run_dmasking(fbnet_space(), FlopsCost(), WEIGHT_BATCHES, THETA_BATCHES, epochs=1,
                     run_dir=tmp_path)
    with pytest.raises(HwnasError, match="epochs"):
        run_dmasking(tiny_masking_space(), FlopsCost(), WEIGHT_BATCHES, THETA_BATCHES, epochs=0,
                     run_dir=tmp_path)
    with pytest.raises(HwnasError, match="cost_mode"):
        run_dmasking(tiny_masking_space(), FlopsCost(), WEIGHT_BATCHES, THETA_BATCHES, epochs=1,
                     cost_mode="median", run_dir=tmp_path)


def test_fixed_layers_keep_their_block_and_the_rest_is_searched(tmp_path):
    space = tiny_masking_space()
    result = search(tmp_path, fixed_layers={0: "k5_e3", 1: "k3_e1"})
    probabilities = np.asarray(result.probabilities)
    first, second = 1 + space.num_stages, 2 + space.num_stages
    assert probabilities[first, :2].tolist() == [0.0, 1.0]
    assert probabilities[second, :2].tolist() == [1.0, 0.0]
    assert probabilities[second + 1, :3].min() > 0  # layer 2 is still searched
    for derived in (result.argmax, *result.samples):
        assert derived.choices[first] == 1 and derived.choices[second] == 0
    with pytest.raises(HwnasError, match="fixed layer 2: unknown candidate 'k3_e6'"):
        search(tmp_path / "bad", fixed_layers={2: "k3_e6"})


def test_a_two_sided_target_derives_a_network_within_its_band(tmp_path):
    space = tiny_masking_space()
    cost = synthetic_table(space, linear_latency)
    smallest = cost.cost(space.to_arch([0] * space.decisions.count))
    largest = cost.cost(space.to_arch(space.largest_choices()))
    target = (smallest + largest) / 2
    result = run_dmasking(space, cost, WEIGHT_BATCHES, THETA_BATCHES, run_dir=tmp_path,
                          target_latency=target, target_form="absolute",
                          **{**SETTINGS, "num_samples": 0})
    derived = result.within_target
    assert derived is not None and 0.95 * target <= derived.cost <= target
    assert derived.cost == pytest.approx(cost.cost(ArchSpec.from_string(derived.arch)))
    assert SearchResult.load(tmp_path / "result.json").within_target == derived
    untargeted = search(tmp_path / "untargeted")
    assert untargeted.within_target is None
