import itertools
import json
import math

import numpy as np
import pytest

from .dnas_helpers import TableCost
from hwnas.dnas.result import (
    DerivedArchitecture,
    SearchResult,
    derive_argmax,
    derive_samples,
    derive_within_target,
)
from hwnas.errors import HwnasError


@pytest.fixture
def cost(space):
    return TableCost(space, np.array([[1.0, 3.0, 2.0, 0.5]] * space.num_layers), constant=1.0)


def peaked(space, choices, mass=0.7):
    probabilities = np.full((space.num_layers, space.num_candidates),
                            (1 - mass) / (space.num_candidates - 1))
    probabilities[np.arange(space.num_layers), choices] = mass
    return probabilities


def test_argmax_derivation(space, cost):
    derived = derive_argmax(space, peaked(space, [1, 3, 0]), cost)
    assert derived.choices == (1, 3, 0)
    assert derived.arch == space.to_arch((1, 3, 0)).to_string()
    assert derived.cost == pytest.approx(1.0 + 3.0 + 0.5 + 1.0)
    assert derived.log_probability == pytest.approx(3 * math.log(0.7))


def test_samples_are_ranked_by_cost_and_follow_p_theta(space, cost):
    probabilities = peaked(space, [1, 3, 0], mass=0.9)
    samples = derive_samples(space, probabilities, cost, num_samples=400,
                             rng=np.random.default_rng(0))
    assert sum(sample.count for sample in samples) == 400
    assert len({sample.choices for sample in samples}) == len(samples)
    costs = [sample.cost for sample in samples]
    assert costs == sorted(costs)
    most_drawn = max(samples, key=lambda sample: sample.count)
    assert most_drawn.choices == (1, 3, 0)
    assert most_drawn.count / 400 == pytest.approx(0.9**3, abs=0.06)
    again = derive_samples(space, probabilities, cost, num_samples=400,
                           rng=np.random.default_rng(0))
    assert again == samples


def test_one_hot_probabilities_sample_only_the_argmax(space, cost):
    probabilities = peaked(space, [2, 2, 3], mass=1.0)
    samples = derive_samples(space, probabilities, cost, num_samples=20,
                             rng=np.random.default_rng(1))
    assert [(sample.choices, sample.count) for sample in samples] == [((2, 2, 3), 20)]


def make_result(space, cost):
    probabilities = peaked(space, [1, 3, 0])
    return SearchResult(
        space=space.name, candidates=space.candidates, cost_name=cost.name, cost_unit=cost.unit,
        epochs=3, seed=4, target_latency=None, final_temperature=4.57, expected_cost=5.25,
        argmax=derive_argmax(space, probabilities, cost),
        samples=derive_samples(space, probabilities, cost, num_samples=5,
                               rng=np.random.default_rng(2)),
        probabilities=tuple(tuple(row) for row in probabilities.tolist()),
    )


def test_round_trip_through_json(space, cost, tmp_path):
    result = make_result(space, cost)
    assert SearchResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    result.save(tmp_path / "result.json")
    assert SearchResult.load(tmp_path / "result.json") == result
    assert json.loads((tmp_path / "result.json").read_text())["argmax"]["arch"].startswith("r8:")


def test_malformed_results_raise(space, cost, tmp_path):
    data = make_result(space, cost).to_dict()
    with pytest.raises(HwnasError, match="missing field 'argmax'"):
        SearchResult.from_dict({key: value for key, value in data.items() if key != "argmax"})
    with pytest.raises(HwnasError, match="unknown field 'extra'"):
        SearchResult.from_dict({**data, "extra": 1})
    with pytest.raises(HwnasError, match="malformed"):
        SearchResult.from_dict({**data, "epochs": "three"})
    with pytest.raises(HwnasError, match="derived architecture"):
        DerivedArchitecture.from_dict([1, 2])
    with pytest.raises(HwnasError, match="not found"):
        SearchResult.load(tmp_path / "missing.json")


def test_bad_probabilities_and_sample_counts_raise(space, cost):
    with pytest.raises(HwnasError, match="shape"):
        derive_argmax(space, np.ones((2, 4)), cost)
    with pytest.raises(HwnasError, match="finite"):
        derive_argmax(space, np.full((3, 4), np.nan), cost)
    with pytest.raises(HwnasError, match="num_samples"):
        derive_samples(space, peaked(space, [0, 0, 0]), cost, num_samples=-1,
                       rng=np.random.default_rng(0))


def random_problem(space, seed):
    """Random layer costs and P_theta on the tiny space, and every network's total cost."""
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(0.5, 5.0, (space.num_layers, space.num_candidates))
    cost = TableCost(space, matrix)
    probabilities = rng.dirichlet(np.ones(space.num_candidates), size=space.num_layers)
    totals = {choices: cost.constant + matrix[range(3), choices].sum()
              for choices in itertools.product(range(4), repeat=3)}
    return cost, probabilities, totals


def log_p(probabilities, choices):
    return np.log(probabilities[range(3), choices]).sum()


@pytest.mark.parametrize("seed", range(5))
def test_within_target_is_the_most_probable_network_that_fits(space, seed):
    cost, probabilities, totals = random_problem(space, seed)
    for target in np.quantile(list(totals.values()), [0.1, 0.5, 0.9]):
        fitting = [choices for choices, total in totals.items() if total <= target]
        best = max(fitting, key=lambda choices: log_p(probabilities, choices))
        derived = derive_within_target(space, probabilities, cost.layer_cost_matrix(space),
                                       target, cost)
        assert derived.cost <= target + 1e-9
        assert derived.log_probability == pytest.approx(log_p(probabilities, best))


def test_within_target_skips_impossible_candidates_and_targets(space):
    cost = TableCost(space, np.array([[1.0, 2.0, 3.0, 0.1]] * 3))
    probabilities = np.full((3, 4), 0.25)
    probabilities[1] = [0.0, 0.0, 1.0, 0.0]  # a fixed layer
    costs = cost.layer_cost_matrix(space)
    derived = derive_within_target(space, probabilities, costs, 100.0, cost)
    assert derived.choices[1] == 2
    assert derive_within_target(space, probabilities, costs, 1.0 + 0.1 + 2.9, cost) is None


@pytest.mark.parametrize("seed", range(3))
def test_within_a_band_is_the_most_probable_network_in_the_band(space, seed):
    cost, probabilities, totals = random_problem(space, seed)
    target = float(np.quantile(list(totals.values()), 0.7))
    lower = 0.8 * target
    band = [choices for choices, total in totals.items() if lower + 0.01 <= total <= target]
    best = max(band, key=lambda choices: log_p(probabilities, choices))
    derived = derive_within_target(space, probabilities, cost.layer_cost_matrix(space), target,
                                   cost, lower=lower)
    assert lower - 0.01 <= derived.cost <= target + 1e-9
    assert derived.log_probability >= log_p(probabilities, best) - 1e-9
