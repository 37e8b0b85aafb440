"""NAS-Bench-201 cell space: string round trips, table index order, operators, encoding."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.data.tables import load_nb201_accuracy
from hwnas.errors import HwnasError
from hwnas.spaces.nb201 import NB201Space

SPACE = NB201Space()
ARCH_0 = (
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
    "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
)


def test_sizes():
    assert SPACE.decisions.size == 15_625 and SPACE.decisions.count == 6
    assert SPACE.candidates == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                "avg_pool_3x3")


def test_parse_known_string_and_round_trip():
    assert SPACE.parse(ARCH_0) == (4, 2, 1, 2, 1, 1)
    assert SPACE.format((4, 2, 1, 2, 1, 1)) == ARCH_0


def test_every_table_string_round_trips_and_indexes_itself():
    keys = load_nb201_accuracy().keys
    all_choices = SPACE.all_choices()
    assert len({tuple(row) for row in all_choices.tolist()}) == SPACE.decisions.size
    np.testing.assert_array_equal(SPACE.indices(all_choices[::-1]), np.arange(15_625)[::-1])
    for index in (0, 1, 2, 6111, 13714, 15624):
        choices = SPACE.parse(keys[index])
        assert SPACE.format(choices) == keys[index]
        assert SPACE.index_of(choices) == index
        assert SPACE.choices_at(index) == choices
    for key in keys[::97]:
        assert SPACE.format(SPACE.parse(key)) == key


@pytest.mark.parametrize("bad", [
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|",
    "|conv_5x5~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|none~2|",
    "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|none~0|+|none~0|+|none~0|none~1|none~2|",
])
def test_parse_rejects_malformed(bad):
    with pytest.raises(HwnasError, match="NB201 string"):
        SPACE.parse(bad)


def test_bad_choices_and_index_raise():
    with pytest.raises(HwnasError, match="needs 6 choices"):
        SPACE.format((0, 1, 2))
    with pytest.raises(HwnasError, match="choice 5 of edge_2-3"):
        SPACE.index_of((0, 0, 0, 0, 0, 5))
    with pytest.raises(HwnasError, match="0..15624"):
        SPACE.choices_at(15_625)


def test_features_add_the_live_path_counts_to_the_one_hot():
    cells = np.array([SPACE.parse(ARCH_0), (0, 0, 0, 0, 0, 0), (3, 3, 3, 3, 3, 3)])
    features = SPACE.encode(cells)
    assert features.shape == (3, 35) and (features[:, :30].sum(axis=1) == 6).all()
    assert features[1, 30:].tolist() == [0, 0, 0, 0, 0]  # output cut off from the input
    assert features[2, 30:].tolist() == [2, 2, 2 * 8 / 6, 0, 2]  # 8 convs on 4 live paths
