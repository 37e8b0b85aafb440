"""NB201 cells are priced by parts: one key per live edge and per addition."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.arch.build import walk
from hwnas.cost.opkey import ADDITION, OpKey, cell_parts, layer_keys
from hwnas.spaces import get_space
from hwnas.spaces.nb201 import nb201_network

SPACE = get_space("nb201")


def first_cell(ops):
    return walk(nb201_network(ops))[1]


def test_a_cell_is_its_live_edges_and_the_additions_of_its_sums():
    layer = first_cell(("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect",
                        "nor_conv_3x3", "nor_conv_1x1"))
    parts = [part.spec.ops for part in cell_parts(layer)]
    single = [ops[3] for ops in parts if ops != ADDITION]
    assert single == ["nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect",
                      "nor_conv_3x3", "nor_conv_1x1"]
    assert parts.count(ADDITION) == 3  # node 2 sums two edges, node 3 three
    dead = first_cell(("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect",
                       "nor_conv_3x3", "none"))  # node 2 no longer reaches the output
    parts = [part.spec.ops[3] for part in cell_parts(dead) if part.spec.ops != ADDITION]
    assert parts == ["nor_conv_3x3", "skip_connect", "nor_conv_3x3"]
    assert all(part.in_channels == 16 and part.in_size == 32 for part in cell_parts(layer))


def test_a_part_is_its_own_key_and_a_cut_cell_has_none():
    part = first_cell(("none", "none", "none", "nor_conv_3x3", "none", "none"))
    assert layer_keys(part) == [layer_keys(part)[0]] and len(layer_keys(part)) == 1
    assert layer_keys(first_cell(("nor_conv_3x3",) * 3 + ("none",) * 3)) == []
    assert layer_keys(first_cell(("none",) * 6)) == []  # the cell of no operation at all


def test_every_cell_of_the_space_is_priced_by_keys_of_the_space():
    from hwnas.cost.opkey import op_keys, space_keys

    keys = set(space_keys(SPACE))
    cells = {tuple(ops) for ops in SPACE.all_choices()}
    assert all(set(op_keys(SPACE.to_arch(cell))) <= keys for cell in cells)


def test_cell_keys_round_trip_through_json():
    for layer in walk(SPACE.to_arch(SPACE.decisions.sample(1, np.random.default_rng(0))[0])):
        for key in layer_keys(layer):
            again = OpKey.from_dict(key.to_dict())
            assert again == key and hash(again) == hash(key)
            assert again.layer_shape().spec == key.layer_shape().spec


@pytest.mark.parametrize("seed", range(3))
def test_the_parts_of_a_network_are_keys_of_the_space(seed):
    from hwnas.cost.opkey import op_keys, space_keys

    keys = set(space_keys(SPACE))
    for row in SPACE.decisions.sample(40, np.random.default_rng(seed)):
        assert set(op_keys(SPACE.to_arch(row))) <= keys
