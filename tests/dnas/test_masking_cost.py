"""Effective-shape and expected costs of the masked supernet, from LUTs and FLOPs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from .masking_helpers import linear_latency, synthetic_table, tiny_masking_space
from hwnas.arch.build import walk
from hwnas.cost.flops import FlopsCost, ParamsCost
from hwnas.cost.lut import LutError
from hwnas.cost.opkey import key_of_layer
from hwnas.dnas.dmasking_cost import (
    DMaskingCost, ShapeCostTables, fill_by_interpolation, hat_weights,
)
from hwnas.errors import HwnasError
from hwnas.spaces import get_space


def random_soft_weights(space, rng, concentration=1.0):
    sizes = space.decisions.cardinalities.tolist()
    weights = np.zeros((len(sizes), max(sizes)))
    for row, size in enumerate(sizes):
        weights[row, :size] = rng.dirichlet([concentration] * size)
    return torch.tensor(weights)


def test_hat_weights_interpolate_linearly():
    grid = torch.tensor([8.0, 16.0, 32.0])
    for value, expected in [(8.0, [1, 0, 0]), (12.0, [0.5, 0.5, 0]), (20.0, [0, 0.75, 0.25]),
                            (32.0, [0, 0, 1])]:
        weights = hat_weights(torch.tensor(value), grid)
        torch.testing.assert_close(weights, torch.tensor(expected, dtype=torch.float32))
        assert float(weights @ grid) == pytest.approx(value)


def test_fill_by_interpolation_along_each_width_axis():
    table = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan], [5.0, np.nan, 9.0]])
    filled = fill_by_interpolation(table, [(0, 1, 2), (10, 20, 30)])
    assert filled.tolist() == [[1, 2, 3], [3, 4.5, 6], [5, 7, 9]]


@pytest.mark.parametrize("mode", ["effective", "expected"])
@pytest.mark.parametrize("model", [FlopsCost(), ParamsCost()])
def test_one_hot_cost_is_the_cost_of_the_plain_network(mode, model):
    space = get_space("dmasking-cifar")
    tables = ShapeCostTables(space, model, mode=mode)
    rng = np.random.default_rng(0)
    for _ in range(10):
        choices = tuple(space.decisions.sample(1, rng)[0])
        expected = model.cost(space.to_arch(choices))
        assert tables.cost_of_choices(choices) == pytest.approx(expected, rel=1e-9)


def test_one_hot_cost_of_a_lut_is_the_table_sum_at_any_resolution():
    space = tiny_masking_space()
    table = synthetic_table(space, lambda layer: 0.5 + layer.in_channels * layer.in_size / 100)
    tables = ShapeCostTables(space, table)
    pricing = DMaskingCost(tables)
    rng = np.random.default_rng(1)
    for _ in range(10):
        arch = space.to_arch(space.decisions.sample(1, rng)[0])
        total = sum(table.latency(key_of_layer(layer)) for layer in walk(arch))
        assert pricing.cost(arch) == pytest.approx(total)


def test_sparse_table_is_interpolated_to_the_full_table():
    full = ShapeCostTables(tiny_masking_space(),
                           synthetic_table(tiny_masking_space(), linear_latency))
    sparse_space = tiny_masking_space(sparse_table=True)
    sparse_table = synthetic_table(sparse_space, linear_latency)
    assert len(sparse_table.entries) < len(synthetic_table(tiny_masking_space(),
                                                           linear_latency).entries)
    sparse = ShapeCostTables(tiny_masking_space(), sparse_table)
    for mine, theirs in zip([sparse.stem, sparse.head, *sparse.layers],
                            [full.stem, full.head, *full.layers]):
        np.testing.assert_allclose(mine, theirs)


def test_a_table_of_another_space_or_a_missing_key_is_refused():
    space = tiny_masking_space()
    table = synthetic_table(space, linear_latency)
    with pytest.raises(LutError, match="cannot price space dmasking-cifar"):
        ShapeCostTables(get_space("dmasking-cifar"), table)
    del table.entries[next(iter(table.entries))]
    with pytest.raises(LutError, match="has no entry"):
        ShapeCostTables(space, table)
    with pytest.raises(HwnasError, match="cost mode"):
        ShapeCostTables(space, FlopsCost(), mode="mean")


def test_effective_shape_never_exceeds_the_expectation_of_flops():
    """FLOPs are convex in each width (the expansion conv grows with c_in^2), so the cost at the
    expected width is at most the expected cost (Jensen), with equality at one-hot weights."""
    space = get_space("dmasking-cifar")
    effective = ShapeCostTables(space, FlopsCost(), mode="effective")
    expected = ShapeCostTables(space, FlopsCost(), mode="expected")
    rng = np.random.default_rng(2)
    gaps = []
    for _ in range(5):
        weights = random_soft_weights(space, rng)
        gaps.append(float(expected.cost(weights)) - float(effective.cost(weights)))
    assert min(gaps) >= -1e-9 and max(gaps) > 0


def test_cost_is_differentiable_in_every_decision():
    space = tiny_masking_space()
    tables = ShapeCostTables(space, synthetic_table(space, linear_latency))
    weights = random_soft_weights(space, np.random.default_rng(3)).requires_grad_(True)
    tables.cost(weights).backward()
    for row, size in enumerate(space.decisions.cardinalities.tolist()):
        assert torch.all(torch.isfinite(weights.grad[row]))
        assert torch.any(weights.grad[row, :size] != 0), row
