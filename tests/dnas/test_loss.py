import math

import numpy as np
import pytest
import torch

from hwnas.cost.base import LayerCostMatrix
from hwnas.dnas.loss import LossSettings, cost_matrix_tensor, expected_cost, latency_factor
from hwnas.errors import HwnasError


def search_loss(cross_entropy, latency, **settings):
    """FBNet's loss with the given settings (alpha, beta, target, target_form)."""
    return LossSettings(**settings).loss(cross_entropy, latency)


def test_fbnet_form_matches_paper_for_paper_scale_latency():
    # At the paper's S8 latencies (~20-30 ms) log(1 + LAT) is within 2 % of log(LAT).
    cross_entropy, latency = torch.tensor(2.0), torch.tensor(25.0)
    loss = search_loss(cross_entropy, latency, alpha=0.2, beta=0.6)
    paper = 2.0 * 0.2 * math.log(25.0) ** 0.6
    assert loss.item() == pytest.approx(paper, rel=0.02)
    assert loss.item() == pytest.approx(2.0 * 0.2 * math.log1p(25.0) ** 0.6, rel=1e-6)


@pytest.mark.parametrize("latency", [1e-3, 0.5, 1.0, 1.5, 3.0])
def test_small_latencies_stay_finite_positive_and_monotone(latency):
    value = torch.tensor(latency, requires_grad=True)
    loss = search_loss(torch.tensor(1.0), value)
    loss.backward()
    assert math.isfinite(loss.item()) and loss.item() > 0
    assert math.isfinite(value.grad.item()) and value.grad.item() > 0


def test_non_positive_expected_cost_is_clamped_not_nan():
    loss = search_loss(torch.tensor(1.0), torch.tensor(-3.0))
    assert math.isfinite(loss.item()) and loss.item() >= 0


def test_budget_form_is_plain_scaled_ce_inside_budget_and_grows_above():
    cross_entropy = torch.tensor(1.5)
    inside = search_loss(cross_entropy, torch.tensor(3.0), alpha=0.2, beta=0.6, target=4.0)
    assert inside.item() == pytest.approx(0.3)
    above = search_loss(cross_entropy, torch.tensor(8.0), alpha=0.2, beta=0.6, target=4.0)
    assert above.item() == pytest.approx(0.3 * 2.0**0.6)
    latency = torch.tensor(3.0, requires_grad=True)
    search_loss(cross_entropy, latency, target=4.0).backward()
    assert latency.grad.item() == 0.0


def test_expected_cost_at_one_hot_equals_the_path_total():
    rng = np.random.default_rng(0)
    costs = LayerCostMatrix(constant=1.25, matrix=rng.uniform(0, 3, size=(5, 4)))
    choices = [3, 0, 2, 2, 1]
    one_hot = torch.zeros(5, 4)
    one_hot[torch.arange(5), torch.tensor(choices)] = 1.0
    value = expected_cost(one_hot, cost_matrix_tensor(costs), costs.constant)
    assert value.item() == pytest.approx(costs.total(choices), rel=1e-6)


def test_expected_cost_gradient_is_the_matrix():
    matrix = torch.arange(6.0).reshape(2, 3)
    weights = torch.full((2, 3), 1 / 3, requires_grad=True)
    expected_cost(weights, matrix, 0.5).backward()
    assert torch.equal(weights.grad, matrix)


def test_shape_mismatch_and_bad_matrix_raise():
    with pytest.raises(HwnasError, match="do not match"):
        expected_cost(torch.ones(2, 3), torch.ones(3, 2), 0.0)
    with pytest.raises(HwnasError, match="NaN"):
        cost_matrix_tensor(LayerCostMatrix(0.0, np.array([[1.0, float("nan")]])))


def test_latency_factor_uses_alpha_as_scale_only():
    latency = torch.tensor(4.0)
    ratio = latency_factor(latency, alpha=0.4) / latency_factor(latency, alpha=0.2)
    assert ratio.item() == pytest.approx(2.0)


def test_absolute_form_is_symmetric_in_log_latency_with_its_minimum_at_the_target():
    cross_entropy = torch.tensor(1.5)

    def loss(latency):
        return search_loss(cross_entropy, torch.tensor(latency), alpha=0.2, beta=0.6,
                           target=4.0, target_form="absolute").item()

    assert loss(4.0) == pytest.approx(0.3)
    assert loss(8.0) == pytest.approx(loss(2.0)) == pytest.approx(0.3 * 2.0**0.6)
    assert loss(3.0) > loss(3.5) > loss(4.0) < loss(4.5) < loss(5.0)


@pytest.mark.parametrize("latency, sign", [(3.0, -1.0), (5.0, 1.0)])
def test_absolute_form_pulls_latency_to_the_target_from_both_sides(latency, sign):
    value = torch.tensor(latency, requires_grad=True)
    search_loss(torch.tensor(1.0), value, target=4.0, target_form="absolute").backward()
    assert math.copysign(1.0, value.grad.item()) == sign


def test_unknown_target_form_is_refused_by_name():
    from hwnas.dnas.config import DnasConfig

    with pytest.raises(HwnasError, match="'two-sided'"):
        DnasConfig(target_latency=4.0, target_form="two-sided")
