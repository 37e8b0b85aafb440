"""DNAS over NAS-Bench-201 cells: the supernet's paths are the benchmark's networks, the engine
runs the problem end to end, and the exact within-target derivation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwnas.cost.nb201_additive import NB201AdditiveLatency
from hwnas.dnas.cellwise import (
    CellProblem, CellSuperNet, MixedCell, most_probable_cell_within, run_cell_dnas,
)
from hwnas.dnas.config import SearchSettings
from hwnas.dnas.supernet import GumbelSample
from hwnas.errors import HwnasError
from hwnas.spaces.nb201 import NB201Space, connected

SPACE = NB201Space()
COLUMN = "hwnb_cifar10_fpga_latency_ms"


def test_a_sampled_path_is_the_soft_mixture_at_a_one_hot_weight():
    torch.manual_seed(0)
    supernet = CellSuperNet(channels=4, cells=1).eval()
    indices = [3, 0, 2, 1, 4, 3]
    one_hot = torch.zeros(6, 5).scatter_(1, torch.tensor(indices)[:, None], 1.0)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        sampled = supernet(x, one_hot, indices)
        soft = supernet(x, one_hot)
        run = supernet.run(x, GumbelSample(one_hot, torch.tensor(indices)), "sampled")
    assert sampled.shape == (2, 10)
    assert torch.allclose(sampled, soft, atol=1e-6) and torch.allclose(sampled, run)
    assert sum(isinstance(block, MixedCell) for block in supernet.blocks) == 3


def test_the_theta_gradient_reaches_every_edge_in_soft_mode():
    supernet = CellSuperNet(channels=4, cells=1)
    weights = torch.softmax(supernet.theta, dim=-1)
    supernet(torch.randn(2, 3, 32, 32), weights).square().mean().backward()
    assert supernet.theta.grad is not None and (supernet.theta.grad.abs().sum(1) > 0).all()


def test_the_within_target_derivation_is_exact_over_all_cells():
    model = NB201AdditiveLatency.from_column(COLUMN, 200, seed=0)
    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet(np.ones(5), size=6)
    every = SPACE.all_choices()
    costs = model.choice_cost(SPACE)(every)
    target = float(np.quantile(costs, 0.25))
    found = most_probable_cell_within(SPACE, probabilities, model, target)
    assert found.cost <= target
    log_p = np.log(probabilities)[np.arange(6), every].sum(1)
    allowed = (costs <= target) & connected(every)
    assert found.log_probability == pytest.approx(log_p[allowed].max())
    assert most_probable_cell_within(SPACE, probabilities, model, costs.min() - 1) is None


def test_the_derivation_skips_cut_off_cells_unless_told_not_to():
    """A P_theta where `none` has won every edge: the most probable cell is the all-`none` one
    (its output never reached); the derivation answers the most probable connected cell."""
    model = NB201AdditiveLatency.from_column(COLUMN, 200, seed=0)
    probabilities = np.full((6, 5), 0.05)
    probabilities[:, 0] = 0.8
    probabilities[3, 3] = 0.15  # a 3x3 conv on edge 0 -> 3 is the runner-up there
    probabilities[3, 0] = 0.65
    target = float(model.choice_cost(SPACE)(SPACE.all_choices()).max())
    anything = most_probable_cell_within(SPACE, probabilities, model, target,
                                         connected_only=False)
    assert anything.choices == (0,) * 6
    found = most_probable_cell_within(SPACE, probabilities, model, target)
    assert found.choices == (0, 0, 0, 3, 0, 0)
    assert connected(np.array([found.choices]))[0] and not connected(np.zeros((1, 6)))[0]


def test_a_short_search_runs_and_its_answers_are_cells(tmp_path):
    """Random images, a one-sided budget at the 10th percentile of the cells' latency: the run
    folder is complete and the expected cost falls from the uniform P_theta's."""
    model = NB201AdditiveLatency.from_column(COLUMN, 200, seed=0)
    every = SPACE.all_choices()
    target = float(np.quantile(model.choice_cost(SPACE)(every), 0.10))
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, 32, 32, generator=generator),
                torch.randint(0, 10, (8,), generator=generator)) for _ in range(3)]
    config = SearchSettings(epochs=3, warmup_epochs=1, batch_size=8, theta_lr=0.2,
                            target_latency=target, num_samples=4, seed=0)
    result = run_cell_dnas(model, batches, batches, config, run_dir=tmp_path / "run",
                           plots=False, channels=4, cells=1)
    problem = CellProblem(SPACE, model, config, channels=4, cells=1)
    uniform = problem.expected_cost(np.full((6, 5), 0.2))
    final = json.loads((tmp_path / "run" / "result.json").read_text())
    assert SPACE.contains(SPACE.to_arch(final["argmax"]["choices"]))
    assert result.within_target.cost <= target
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").open()]
    assert history[-1]["expected_cost"] < uniform


def test_fixed_layers_are_refused():
    model = NB201AdditiveLatency.from_column(COLUMN, 200, seed=0)
    with pytest.raises(HwnasError, match="fixes no edges"):
        CellProblem(SPACE, model, SearchSettings(fixed_layers=((0, "none"),)))


def test_a_search_starts_from_a_warm_up_s_weights_not_its_theta(tmp_path):
    """A warm-up (weights only) then a search with warm_start: the search's supernet starts at
    the warm-up's weights, with its own (uniform) theta, and the run records where it came
    from."""
    from hwnas.dnas.checkpoint import load_supernet_weights

    model = NB201AdditiveLatency.from_column(COLUMN, 200, seed=0)
    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randn(8, 3, 32, 32, generator=generator),
                torch.randint(0, 10, (8,), generator=generator)) for _ in range(2)]
    warmup = SearchSettings(epochs=1, warmup_epochs=1, batch_size=8, seed=0)
    run_cell_dnas(model, batches, batches, warmup, run_dir=tmp_path / "warmup", plots=False,
                  channels=4, cells=1)
    problem = CellProblem(SPACE, model, SearchSettings(epochs=1, warmup_epochs=0, batch_size=8),
                          channels=4, cells=1, warm_start=tmp_path / "warmup" / "checkpoint.pt")
    started = problem.build_supernet(resuming=False)
    reference = CellSuperNet(4, 1)
    load_supernet_weights(tmp_path / "warmup" / "checkpoint.pt", reference)
    fresh = CellSuperNet(4, 1)
    for (name, value), expected, other in zip(started.state_dict().items(),
                                              reference.state_dict().values(),
                                              fresh.state_dict().values()):
        assert torch.equal(value, expected), name
    assert torch.equal(started.theta, torch.zeros(6, 5))
    assert any(not torch.equal(a, b) for a, b in zip(started.state_dict().values(),
                                                     fresh.state_dict().values()))
    assert problem.describe()["warm_start"].endswith("checkpoint.pt")
    assert "warm_start" not in CellProblem(SPACE, model, warmup, channels=4,
                                           cells=1).describe()
