"""The ChamNet space: coverage of the released models, round trips, encoding, LUT keys."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.arch import zoo
from hwnas.arch.spec import SpecError
from hwnas.cost.flops import FlopsCost
from hwnas.cost.opkey import op_keys, space_keys
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
    values = pure.decisions.values_of(pure.choices_of(zoo.mobilenet_v2()))
    assert (values["resolution"], values["stem"], values["head"]) == (224, 32, 1280)
    assert [values[f"width_{g}"] for g in range(1, 8)] == [16, 24, 32, 64, 96, 160, 320]
    # ChamNet-E's "64x4 (1+3)" group: one 64-wide block at stride 2, three in group 5.
    space = get_space("chamnet")
    e = space.decisions.values_of(space.choices_of(zoo.chamnet_e()))
    assert (e["width_4"], e["depth_4"], e["width_5"], e["depth_5"]) == (64, 1, 64, 3)


def test_outside_architecture_is_refused():
    with pytest.raises(SpecError, match="not in space"):
        get_space("chamnet").choices_of(zoo.fbnet_a())
    with pytest.raises(SpecError, match="resolution"):
        get_space("chamnet-cifar").choices_of(zoo.chamnet_a())


@pytest.mark.parametrize("name", ["chamnet", "chamnet-cifar"])
def test_encoding_scales_every_decision_to_the_unit_interval(name):
    space = get_space(name)
    encoded = space.encode(space.decisions.sample(50, np.random.default_rng(0)))
    assert encoded.shape == (50, 24) and encoded.min() >= 0 and encoded.max() <= 1
    largest = space.encode(space.decisions.cardinalities[None, :] - 1)
    assert (largest[0, space.decisions.cardinalities > 1] == 1).all()


def test_cifar_lut_keys_cover_every_architecture():
    space = get_space("chamnet-cifar")
    keys = set(space_keys(space))
    assert len(keys) == 222
    rng = np.random.default_rng(1)
    for row in space.decisions.sample(50, rng):
        assert set(op_keys(space.to_arch(row))) <= keys


@pytest.mark.parametrize("name", ["chamnet", "chamnet-cifar"])
def test_vectorised_flops_equal_the_walk(name):
    space = get_space(name)
    cost = FlopsCost().choice_cost(space)
    choices = space.decisions.sample(20, np.random.default_rng(2))
    expected = [FlopsCost().cost(space.to_arch(row)) for row in choices]
    np.testing.assert_allclose(cost(choices), expected, rtol=1e-12)
