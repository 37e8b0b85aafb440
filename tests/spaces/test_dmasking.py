"""The DMasking (FBNetV2) space over the FBNet CIFAR stages."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hwnas.arch.spec import ArchSpec, SpecError
from hwnas.cost.opkey import op_keys, space_keys
from hwnas.spaces import get_space
from hwnas.spaces.dmasking import DMaskingSpace, dmasking_space, scaled_widths
from hwnas.spaces.fbnet import FBNET_WIDTHS


def test_width_options_are_fbnet_widths_scaled_and_rounded_to_eight():
    space = get_space("dmasking-cifar")
    assert scaled_widths(112, (0.5, 0.75, 1.0)) == (56, 88, 112)
    assert scaled_widths(16, (0.5, 0.75, 1.0)) == (8, 16)
    for widths, fbnet_width in zip(space.stage_widths, FBNET_WIDTHS):
        assert widths[-1] == fbnet_width and all(width % 8 == 0 for width in widths)
    assert space.resolutions == (24, 28, 32) and space.resolution == 32


def test_choices_round_trip_and_the_arch_has_the_chosen_resolution():
    space = get_space("dmasking-cifar")
    rng = np.random.default_rng(0)
    for row in space.decisions.sample(50, rng):
        choices = tuple(row)
        arch = space.to_arch(choices)
        assert arch.resolution == space.resolutions[choices[0]]
        assert space.choices_of(ArchSpec.from_string(arch.to_string())) == choices
        assert space.contains(arch)


def test_skip_is_offered_only_inside_a_stage():
    space = get_space("dmasking-cifar")
    for layer in space.layers:
        assert ("skip" in layer.candidates) == (not layer.first)
    assert space.num_layers == 22 and space.decisions.count == 1 + 7 + 22


def test_lut_keys_cover_every_architecture_and_the_sparse_table_is_smaller():
    space = get_space("dmasking-cifar")
    keys = set(space_keys(space))
    sparse = set(space_keys(get_space("dmasking-cifar-sparse")))
    assert len(keys) == 888 and sparse < keys and len(sparse) == 515
    rng = np.random.default_rng(1)
    for row in space.decisions.sample(100, rng):
        assert set(op_keys(space.to_arch(row))) <= keys


def test_foreign_architectures_and_bad_choices_are_refused():
    space = get_space("dmasking-cifar")
    fbnet_space = get_space("fbnet-cifar")
    assert space.contains(fbnet_space.to_arch([0] * 22))  # all k3_e1 at full width: in both
    assert not space.contains(fbnet_space.to_arch([1] * 22))  # k3_e1_g2 cannot be masked
    assert not space.contains(dataclasses.replace(space.to_arch([0] * 30), resolution=20))
    with pytest.raises(SpecError, match="needs 30 choices"):
        space.to_arch([0] * 29)
    with pytest.raises(SpecError, match="choice 3 of width_1"):
        space.to_arch([0, 3] + [0] * 28)
    with pytest.raises(SpecError, match="unknown DMasking setting"):
        dmasking_space("imagenet")
    with pytest.raises(SpecError, match="ascending"):
        DMaskingSpace(name="x", resolutions=(32, 24), stem=space.stem,
                      stage_widths=space.stage_widths, depths=space.depths,
                      strides=space.strides, head=space.head)
