"""Vectorised costs (LUT over the ChamNet space, budgets), NB201 latency and the tabular NB201
evaluator."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.cost.calibration import Calibration
from hwnas.cost.budget import make_budgets
from hwnas.cost.device_table import NB201Latency
from hwnas.cost.lut import LatencyTable, LutEntry
from hwnas.cost.opkey import space_keys
from hwnas.data.tables import nb201_accuracy, nb201_latency
from hwnas.errors import HwnasError
from hwnas.evolution.evaluators import NB201Evaluator
from hwnas.spaces import get_space


def synthetic_table(space):
    """A complete LUT of made-up latencies with an affine correction (the table arithmetic is
    under test, not timing)."""
    rng = np.random.default_rng(0)
    entries = {}
    for key in space_keys(space):
        value = float(rng.uniform(0.01, 1.0))
        entries[key] = LutEntry(key, value)
    calibration = Calibration("affine", 1.25, 0.5, {}, [], "test", {})
    return LatencyTable(space=space.lut_metadata(), engine={"name": "onnxruntime", "threads": 1},
                        entries=entries, calibration=calibration)


def test_lut_vectorised_cost_over_the_chamnet_space_equals_the_table():
    space = get_space("chamnet-cifar")
    table = synthetic_table(space)
    assert table.is_complete(space)
    cost = table.choice_cost(space)
    choices = space.decisions.sample(30, np.random.default_rng(1))
    expected = [table.cost(space.to_arch(row)) for row in choices]
    np.testing.assert_allclose(cost(choices), expected, rtol=1e-12)


def test_budget_forms():
    space = get_space("chamnet-cifar")
    table = synthetic_table(space)
    single = make_budgets([(table, 5.0)], space)
    assert len(single) == 1 and single[0].name == "ort-1t latency <= 5 ms"
    both = make_budgets([[(table, 5.0), (table, 6.0)], (table, 1.0)], space)
    assert [len(b.constraints) for b in both] == [2, 1]
    with pytest.raises(HwnasError, match="a budget must be"):
        make_budgets([42], space)


def test_nb201_evaluator_rows_and_features():
    evaluator = NB201Evaluator("cifar10valid_valid_12ep", report_column="cifar10_test_200ep")
    all_choices = np.asarray(evaluator.space.all_choices())
    rows = np.array([0, 17, 6111, 15624])
    np.testing.assert_array_equal(evaluator.indices(all_choices[rows]), rows)
    np.testing.assert_array_equal(evaluator.report(all_choices[rows]),
                                  nb201_accuracy("cifar10_test_200ep")[rows])
    features = evaluator.space.encode(np.array([[0, 0, 0, 0, 0, 0], [3, 0, 0, 0, 1, 0]]))
    assert features.shape == (2, 35)
    assert features[0, 30] == 0 and features[1, 30] == 2  # output connected (scaled by 2)
    assert features[1, 32] == pytest.approx(2 / 6)  # one 3x3 conv on a live path


def test_nb201_latency_is_a_cost_model_of_the_cell_space():
    space = get_space("nb201")
    latency = NB201Latency("hwnb_cifar10_pixel3_latency_ms")
    rows = np.array([0, 5, 15624])
    cost = latency.choice_cost(space)
    np.testing.assert_array_equal(cost(space.all_choices()[rows]),
                                  nb201_latency("hwnb_cifar10_pixel3_latency_ms")[rows])
    assert (cost.name, cost.unit) == ("hwnb_cifar10_pixel3_latency_ms", "ms")
    with pytest.raises(HwnasError, match="prices space nb201, not 'fbnet-cifar'"):
        latency.choice_cost(get_space("fbnet-cifar"))
    with pytest.raises(HwnasError, match="unknown latency column 'x'"):
        NB201Latency("x")


def test_nb201_latency_of_given_values_looks_them_up_and_refuses_bad_ones():
    space = get_space("nb201")
    values = np.arange(15625, dtype=float) / 100
    latency = NB201Latency("this CPU", values=values)
    np.testing.assert_array_equal(latency.choice_cost(space)(space.all_choices()[[3, 7]]),
                                  [0.03, 0.07])
    assert latency.name == "this CPU"
    for bad in (values[:10], np.r_[values[:-1], np.nan], -values):
        with pytest.raises(HwnasError, match="one finite, non-negative value per cell"):
            NB201Latency("this CPU", values=bad)
