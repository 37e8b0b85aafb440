"""The additive NB201 latency model: exact on an additive column, one interface, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.cost.nb201_additive import UNKNOWNS, NB201AdditiveLatency, one_hot
from hwnas.data.tables import nb201_latency_columns
from hwnas.errors import HwnasError
from hwnas.spaces import get_space
from hwnas.spaces.nb201 import NB201Space

SPACE = get_space("nb201")
COLUMN = "hwnb_cifar10_fpga_latency_ms"


def test_one_hot_has_the_models_rank():
    every = SPACE.all_choices()
    features = one_hot(every)
    assert features.shape == (15625, UNKNOWNS) and np.linalg.matrix_rank(features) == UNKNOWNS
    assert (features[:, 1:].sum(1) == (every > 0).sum(1)).all()


def test_a_truly_additive_column_is_recovered_from_a_few_more_cells_than_unknowns():
    """Known answer: a column built additively is fitted exactly from 30 cells."""
    rng = np.random.default_rng(0)
    weights = np.c_[np.zeros(6), rng.uniform(0.1, 2.0, (6, 4))]
    every = SPACE.all_choices()
    model = NB201AdditiveLatency(3.0 + weights[np.arange(6), every].sum(1), 30, seed=1)
    assert model.base == pytest.approx(3.0) and np.allclose(model.weights, weights)
    fidelity = model.fidelity_on_rest()
    assert fidelity["within_10pct"] == 100.0 and fidelity["kendall"] > 0.999
    assert fidelity["cells"] == 15625 - 30


def test_the_cost_interface_agrees_with_itself():
    model = NB201AdditiveLatency.from_column(COLUMN, 100, seed=0)
    rows = SPACE.decisions.sample(20, np.random.default_rng(2))
    matrix = model.layer_cost_matrix(SPACE)
    vector = model.choice_cost(SPACE)(rows)
    for row, value in zip(rows, vector):
        assert matrix.total(row) == pytest.approx(value)
        assert model.cost(SPACE.to_arch(row)) == pytest.approx(value)
    uniform = np.full((6, 5), 0.2)  # DNAS's expectation at uniform probabilities
    assert matrix.expected(uniform) == pytest.approx(model.base + 0.2 * model.weights.sum())


def test_more_rows_fit_no_worse_on_a_measured_column():
    columns = [name for name in nb201_latency_columns() if "raspi4" in name]
    small = NB201AdditiveLatency.from_column(columns[0], 100, seed=0).fidelity_on_rest()
    large = NB201AdditiveLatency.from_column(columns[0], 1000, seed=0).fidelity_on_rest()
    assert large["mape"] <= small["mape"] + 0.5


@pytest.mark.parametrize("rows", [24, 15626, 2.5, True])
def test_rows_out_of_range_are_one_error(rows):
    with pytest.raises(HwnasError, match="rows in 25..15625"):
        NB201AdditiveLatency.from_column(COLUMN, rows)


def test_a_column_of_the_wrong_length_is_one_error():
    with pytest.raises(HwnasError, match="one latency per cell"):
        NB201AdditiveLatency(np.ones(10), 30)


def test_another_space_is_refused():
    with pytest.raises(HwnasError, match="prices space nb201"):
        NB201AdditiveLatency.from_column(COLUMN, 100).choice_cost(get_space("fbnet-cifar"))


def test_the_fit_never_prices_a_cell_below_zero():
    """raspi4's small cut-off cells take a fraction of a millisecond; the unfloored least-squares
    fit goes below zero for some 200 cells."""
    model = NB201AdditiveLatency.from_column("hwnb_cifar10_raspi4_latency_ms", 100, seed=0)
    every = NB201Space().all_choices()
    costs = model.choice_cost(NB201Space())(every)
    unfloored = model.base + model.weights[np.arange(6), every].sum(1)
    assert (unfloored < 0).sum() > 100 and costs.min() == 0.0
    np.testing.assert_array_equal(costs, np.maximum(unfloored, 0.0))
