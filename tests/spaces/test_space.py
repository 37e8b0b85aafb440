"""Every registered space keeps the search-space protocol (``hwnas.spaces.space``)."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.arch.build import walk
from hwnas.cost.flops import layer_counts
from hwnas.cost.opkey import op_keys, space_keys
from hwnas.errors import HwnasError, SpecError
from hwnas.spaces import REGISTRY, get_space, space_names

NAMES = space_names()
#: spaces whose architectures are built as networks (a LUT can be measured for them)
NETWORK_SPACES = space_names("lut")


@pytest.mark.parametrize("name", NAMES)
def test_decisions_and_operators(name):
    decisions = get_space(name).decisions
    assert decisions.count == len(decisions.names) == len(decisions.cardinalities) > 0
    assert decisions.size == int(np.prod(decisions.cardinalities.tolist(), dtype=object))
    rng = np.random.default_rng(0)
    population = decisions.sample(40, rng)
    assert population.shape == (40, decisions.count)
    assert (population >= 0).all() and (population < decisions.cardinalities).all()
    assert np.array_equal(decisions.sample(5, np.random.default_rng(7)),
                          decisions.sample(5, np.random.default_rng(7)))
    moved = decisions.mutate(population, np.ones(40), rng)
    searchable = decisions.cardinalities > 1
    assert (moved[:, searchable] != population[:, searchable]).all()
    assert (moved[:, ~searchable] == population[:, ~searchable]).all()
    assert np.array_equal(decisions.mutate(population, np.zeros(40), rng), population)
    other = decisions.sample(40, rng)
    child = decisions.crossover(population, other, rng)
    assert ((child == population) | (child == other)).all()
    assert (child != population).any() and (child != other).any()


@pytest.mark.parametrize("name", NAMES)
def test_format_parse_and_encode(name):
    space = get_space(name)
    population = space.decisions.sample(12, np.random.default_rng(1))
    for row in population:
        assert space.parse(space.format(row)) == tuple(row)
    features = space.encode(population)
    assert features.ndim == 2 and len(features) == 12 and np.isfinite(features).all()
    assert np.array_equal(features[3], space.encode(population[3:4])[0])
    with pytest.raises(HwnasError):
        space.decisions.checked([0] * (space.decisions.count + 1))


@pytest.mark.parametrize("name", NETWORK_SPACES)
def test_networks_round_trip_and_layers_are_covered(name):
    space = get_space(name)
    population = space.decisions.sample(8, np.random.default_rng(2))
    # a -sparse space's table holds the extreme widths only: its networks are the dense space's
    keys = set(space_keys(get_space(name.removesuffix("-sparse"))))
    for row in population:
        arch = space.to_arch(row)
        assert space.choices_of(arch) == tuple(row) and space.contains(arch)
        assert set(op_keys(arch)) <= keys
    metadata = space.lut_metadata()
    assert metadata["name"] == name and metadata["resolution"] > 0


@pytest.mark.parametrize("name", NETWORK_SPACES)
def test_layer_sums_equal_the_walk(name):
    space = get_space(name)
    population = space.decisions.sample(10, np.random.default_rng(3))
    def macs(layer):
        return float(layer_counts(layer).macs)
    expected = [sum(macs(layer) for layer in walk(space.to_arch(row))) for row in population]
    np.testing.assert_allclose(space.layer_sums(macs)(population), expected, rtol=1e-12)


def test_cell_space_builds_networks_and_its_layer_keys_are_parts():
    space = get_space("nb201")
    arch = space.to_arch((3,) * 6)
    assert space.contains(arch) and space.choices_of(arch) == (3,) * 6
    assert space.lut_metadata() == {"name": "nb201", "resolution": 32}
    keys = space_keys(space)  # stem, 2 reductions, head; 4 operations + 1 addition x 3 stages
    assert len(keys) == 4 + 3 * 5
    for choices in space.decisions.sample(50, np.random.default_rng(0)):
        assert set(op_keys(space.to_arch(choices))) <= set(keys)
    assert not space.contains(get_space("fbnet-cifar").to_arch([0] * 22))


def test_registry_names_strategies():
    assert set(NAMES) == set(REGISTRY)
    assert "nb201" in space_names("chamnet") and "nb201" in space_names("lut")
    assert space_names("dmasking") == ("dmasking-cifar",)
    with pytest.raises(SpecError, match="unknown search space 'nope'"):
        get_space("nope")
    with pytest.raises(SpecError, match="for dnas"):
        get_space("nb201", "dnas")
