"""The DMasking derivation: the most probable network within a target, against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from .masking_helpers import linear_latency, synthetic_table, tiny_masking_space
from hwnas.dnas.dmasking_cost import DMaskingCost, ShapeCostTables
from hwnas.dnas.masked import block_costs, derive_within_target


def random_probabilities(space, seed):
    rng = np.random.default_rng(seed)
    probabilities = np.zeros((space.decisions.count, max(space.decisions.cardinalities.tolist())))
    for row, size in enumerate(space.decisions.cardinalities.tolist()):
        probabilities[row, :size] = rng.dirichlet(np.ones(size))
    return probabilities


def every_network(space, tables, probabilities):
    """(cost, log P, choices) of every architecture of the space."""
    sizes = space.decisions.cardinalities.tolist()
    for choices in itertools.product(*(range(size) for size in sizes)):
        log_p = sum(np.log(max(probabilities[row, option], 1e-300))
                    for row, option in enumerate(choices))
        yield tables.cost_of_choices(choices), log_p, choices


@pytest.fixture(scope="module")
def setting():
    space = tiny_masking_space()
    tables = ShapeCostTables(space, synthetic_table(space, linear_latency))
    return space, tables, DMaskingCost(tables)


def test_block_costs_add_up_to_the_cost_of_the_network(setting):
    space, tables, _ = setting
    rng = np.random.default_rng(0)
    for _ in range(20):
        choices = tuple(space.decisions.sample(1, rng)[0])
        constant, matrix = block_costs(space, tables, choices[:1 + space.num_stages],
                                       max(space.decisions.cardinalities.tolist()))
        blocks = choices[1 + space.num_stages:]
        total = constant + sum(matrix[layer, block] for layer, block in enumerate(blocks))
        assert total == pytest.approx(tables.cost_of_choices(choices))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.8])
def test_within_target_is_the_most_probable_network_that_fits(setting, seed, fraction):
    space, tables, pricing = setting
    probabilities = random_probabilities(space, seed)
    networks = list(every_network(space, tables, probabilities))
    cheapest, dearest = min(n[0] for n in networks), max(n[0] for n in networks)
    target = cheapest + fraction * (dearest - cheapest)
    derived = derive_within_target(space, probabilities, tables, target, pricing, bins=20000)
    best = max(log_p for cost, log_p, _ in networks if cost <= target)
    assert derived.cost <= target
    assert derived.log_probability == pytest.approx(best)
    assert derived.cost == pytest.approx(tables.cost_of_choices(derived.choices))


def test_lower_bound_and_zero_probability_options_are_respected(setting):
    space, tables, pricing = setting
    probabilities = random_probabilities(space, 3)
    probabilities[0] = [0.0, 1.0, 0.0]  # resolution fixed to 8 px
    networks = list(every_network(space, tables, probabilities))
    costs = sorted({round(cost, 9) for cost, log_p, _ in networks if np.isfinite(log_p)})
    # bounds between two networks' costs: the knapsack rounds costs to steps of (target -
    # cheapest) / bins, so a network exactly at a bound may be missed
    lower = (costs[len(costs) // 3] + costs[len(costs) // 3 - 1]) / 2
    target = (costs[len(costs) // 2] + costs[len(costs) // 2 + 1]) / 2
    derived = derive_within_target(space, probabilities, tables, target, pricing, lower=lower,
                                   bins=20000)
    assert lower <= derived.cost <= target and derived.choices[0] == 1
    best = max(log_p for cost, log_p, _ in networks if lower <= cost <= target)
    assert best > -100  # the best network in the band has the fixed resolution
    assert derived.log_probability == pytest.approx(best)


def test_nothing_fits_below_the_cheapest_network(setting):
    space, tables, pricing = setting
    probabilities = random_probabilities(space, 4)
    cheapest = min(cost for cost, _, _ in every_network(space, tables, probabilities))
    assert derive_within_target(space, probabilities, tables, 0.99 * cheapest, pricing) is None
