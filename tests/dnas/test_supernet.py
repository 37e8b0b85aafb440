from dataclasses import replace

import numpy as np
import pytest
import torch

from hwnas.arch.build import build_model
from hwnas.cost.base import LayerCostMatrix
from hwnas.dnas.loss import cost_matrix_tensor, expected_cost
from hwnas.dnas.supernet import SuperNet, gumbel_softmax_sample
from hwnas.errors import HwnasError
from hwnas.spaces.fbnet import Stage

from .dnas_helpers import TableCost, synthetic_batches, tiny_space


def trained_supernet(space, seed=0):
    """A supernet whose weights and BN statistics are no longer at their initial values."""
    torch.manual_seed(seed)
    supernet = SuperNet(space).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(supernet.weight_parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)
    for images, labels in synthetic_batches(3, 16):
        sample = gumbel_softmax_sample(supernet.theta.detach(), 5.0, generator)
        loss = torch.nn.functional.cross_entropy(supernet(images, sample.soft), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return supernet


def one_hot_theta(space, choices, logit=1000.0):
    theta = torch.zeros(space.num_layers, space.num_candidates)
    theta[torch.arange(space.num_layers), torch.tensor(choices)] = logit
    return theta


@pytest.mark.parametrize("choices", [(0, 1, 2), (3, 3, 3), (1, 0, 3), (2, 2, 0)])
@pytest.mark.parametrize("mode", ["soft", "sampled"])
def test_one_hot_theta_gives_the_derived_network(space, choices, mode):
    supernet = trained_supernet(space)
    with torch.no_grad():
        supernet.theta.copy_(one_hot_theta(space, choices))
    assert supernet.argmax_choices() == choices
    child = build_model(space.to_arch(supernet.argmax_choices()))
    child.load_state_dict(supernet.child_state_dict(choices))
    supernet.eval()
    child.eval()
    images = synthetic_batches(1, 8, seed=5)[0][0]
    sample = gumbel_softmax_sample(supernet.theta, 0.05, torch.Generator().manual_seed(1))
    assert tuple(sample.indices.tolist()) == choices
    with torch.no_grad():
        mixed = supernet.run(images.contiguous(memory_format=torch.channels_last), sample, mode)
        single = child(images)
    torch.testing.assert_close(mixed, single, rtol=1e-5, atol=1e-6)


def test_extract_child_carries_the_path_weights(space):
    supernet = trained_supernet(space)
    child = supernet.extract_child((1, 3, 2))
    assert child.arch == space.to_arch((1, 3, 2))
    torch.testing.assert_close(
        child.blocks[0].depthwise[0].weight, supernet.layers[0].candidates[1].depthwise[0].weight
    )
    with pytest.raises(HwnasError):
        supernet.extract_child((0, 0, 7))


def test_expected_latency_at_one_hot_equals_the_cost_of_the_derived_arch(space):
    rng = np.random.default_rng(3)
    cost_model = TableCost(space, rng.uniform(0.5, 4.0, size=(3, 4)), constant=2.0)
    costs = cost_model.layer_cost_matrix(space)
    supernet = SuperNet(space)
    with torch.no_grad():
        supernet.theta.copy_(one_hot_theta(space, (2, 0, 3), logit=50.0))
    value = expected_cost(supernet.probabilities(), cost_matrix_tensor(costs), costs.constant)
    derived = space.to_arch(supernet.argmax_choices())
    assert value.item() == pytest.approx(cost_model.cost(derived), rel=1e-6)
    assert isinstance(costs, LayerCostMatrix)


def count_candidate_calls(supernet):
    calls = np.zeros((len(supernet.layers), len(supernet.layers[0].candidates)), dtype=int)
    for layer, mixed in enumerate(supernet.layers):
        for candidate, block in enumerate(mixed.candidates):
            def hook(module, inputs, output, layer=layer, candidate=candidate):
                calls[layer, candidate] += 1
            block.register_forward_hook(hook)
    return calls


def test_sampled_mode_runs_exactly_one_candidate_per_layer(space):
    supernet = SuperNet(space)
    calls = count_candidate_calls(supernet)
    generator = torch.Generator().manual_seed(0)
    images = synthetic_batches(1, 4)[0][0]
    chosen = []
    for _ in range(5):
        sample = gumbel_softmax_sample(supernet.theta, 1.0, generator)
        supernet.run(images, sample, "sampled")
        chosen.append(sample.indices.tolist())
    assert (calls.sum(axis=1) == 5).all()
    expected = np.zeros_like(calls)
    for indices in chosen:
        expected[np.arange(3), indices] += 1
    assert np.array_equal(calls, expected)


def test_soft_mode_runs_every_candidate(space):
    supernet = SuperNet(space)
    calls = count_candidate_calls(supernet)
    sample = gumbel_softmax_sample(supernet.theta, 1.0, torch.Generator().manual_seed(0))
    supernet.run(synthetic_batches(1, 4)[0][0], sample, "soft")
    assert (calls == 1).all()


@pytest.mark.parametrize("mode", ["soft", "sampled"])
def test_theta_gets_a_gradient_in_both_modes(space, mode):
    supernet = SuperNet(space)
    images, labels = synthetic_batches(1, 8)[0]
    sample = gumbel_softmax_sample(supernet.theta, 1.0, torch.Generator().manual_seed(0))
    loss = torch.nn.functional.cross_entropy(supernet.run(images, sample, mode), labels)
    (gradient,) = torch.autograd.grad(loss, [supernet.theta])
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0
    with pytest.raises(HwnasError, match="mode"):
        supernet.run(images, sample, "hard")


def test_straight_through_weights_are_one_hot_in_value(space):
    theta = torch.randn(3, 4, requires_grad=True)
    sample = gumbel_softmax_sample(theta, 0.7, torch.Generator().manual_seed(2))
    weights = sample.straight_through()
    assert torch.equal(weights.detach().sum(dim=1), torch.ones(3))
    assert torch.equal(weights.detach().argmax(dim=1), sample.indices)
    (weights[:, 0].sum()).backward()
    assert theta.grad.abs().sum() > 0


def test_gumbel_draws_follow_softmax_theta_and_the_generator():
    theta = torch.tensor([[2.0, 0.0, -1.0, 0.5]])
    generator = torch.Generator().manual_seed(0)
    draws = [gumbel_softmax_sample(theta, 3.0, generator).indices.item() for _ in range(4000)]
    frequencies = np.bincount(draws, minlength=4) / len(draws)
    # Gumbel-max: argmax(theta + g) ~ softmax(theta) whatever the temperature.
    np.testing.assert_allclose(frequencies, torch.softmax(theta, 1)[0].numpy(), atol=0.025)
    first = gumbel_softmax_sample(theta, 1.0, torch.Generator().manual_seed(7)).soft
    again = gumbel_softmax_sample(theta, 1.0, torch.Generator().manual_seed(7)).soft
    assert torch.equal(first, again)


def test_invalid_candidate_for_the_space_raises():
    # The group-2 candidate needs even widths: a stage of width 9 cannot hold it.
    space = replace(tiny_space(), stages=(Stage(9, 1, 1),))
    with pytest.raises(HwnasError, match="groups 2"):
        SuperNet(space)
