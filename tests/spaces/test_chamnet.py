"""The ChamNet space: coverage of the released models, round trips, encoding, LUT keys."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.arch import zoo
from hwnas.arch.spec import SpecError
from hwnas.cost.flops import FlopsCost
from hwnas.cost.opkey import op_keys, space_keys
from hwnas.evolution.costs import vectorised_cost
from hwnas.spaces import get_space
from hwnas.spaces.chamnet import chamnet_space

CHAMNETS = [zoo.chamnet_a, zoo.chamnet_b, zoo.chamnet_c, zoo.chamnet_d, zoo.chamnet_e,
            zoo.chamnet_f]


@pytest.mark.parametrize("model", CHAMNETS, ids=lambda f: f.__name__)
def test_released_chamnets_are_in_the_space(model):
    released = get_space("chamnet")  # e=1 block keeps its 1x1 conv, as released
    arch = model()
    assert released.to_arch(released.choices_of(arch)) == arch
    pure = chamnet_space("imagenet", e1_first_pointwise=False)
    plain = model(first_pointwise=False)
    assert pure.to_arch(pure.choices_of(plain)) == plain


def test_mobilenet_v2_and_chamnet_e_layout():
    pure = chamnet_space("imagenet", e1_first_pointwise=False)
    values = pure.values_of(pure.choices_of(zoo.mobilenet_v2()))
    assert (values["resolution"], values["stem"], values["head"]) == (224, 32, 1280)
    assert [values[f"width_{g}"] for g in range(1, 8)] == [16, 24, 32, 64, 96, 160, 320]
    # ChamNet-E's "64x4 (1+3)" group: one 64-wide block at stride 2, three in group 5.
    e = get_space("chamnet").values_of(get_space("chamnet").choices_of(zoo.chamnet_e()))
    assert (e["width_4"], e["depth_4"], e["width_5"], e["depth_5"]) == (64, 1, 64, 3)


def test_outside_architecture_is_refused():
    with pytest.raises(SpecError, match="not in space"):
        get_space("chamnet").choices_of(zoo.fbnet_a())
    with pytest.raises(SpecError, match="resolution"):
        get_space("chamnet-cifar").choices_of(zoo.chamnet_a())


@pytest.mark.parametrize("name", ["chamnet", "chamnet-cifar"])
def test_round_trips_encoding_and_operators(name):
    space = get_space(name)
    rng = np.random.default_rng(0)
    assert space.size == int(np.prod(space.cardinalities.astype(object)))
    for _ in range(30):
        choices = space.sample_choices(rng)
        assert space.choices_of(space.to_arch(choices)) == choices
        assert space.decode(space.encode(choices)) == choices
        mutant = space.mutate_choices(choices, rng)
        assert mutant != choices
        child = space.crossover_choices(choices, mutant, rng)
        assert all(c in (a, b) for a, b, c in zip(choices, mutant, child))
    encoded = space.encode_many(np.array([space.sample_choices(rng) for _ in range(5)]))
    assert encoded.shape == (5, space.num_dimensions) and encoded.min() >= 0
    assert encoded.max() <= 1


def test_cifar_lut_keys_cover_every_architecture():
    space = get_space("chamnet-cifar")
    keys = set(space_keys(space))
    assert len(keys) == 222
    rng = np.random.default_rng(1)
    for _ in range(50):
        assert set(op_keys(space.sample(rng))) <= keys


@pytest.mark.parametrize("name", ["chamnet", "chamnet-cifar"])
def test_vectorised_flops_equal_the_walk(name):
    space = get_space(name)
    cost = vectorised_cost(FlopsCost(), space)
    rng = np.random.default_rng(2)
    choices = np.array([space.sample_choices(rng) for _ in range(20)])
    expected = [FlopsCost().cost(space.to_arch(row)) for row in choices]
    np.testing.assert_allclose(cost(choices), expected, rtol=1e-12)
