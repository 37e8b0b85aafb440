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
    assert SPACE.size == 15_625 and SPACE.num_layers == 6 and SPACE.num_candidates == 5
    assert SPACE.candidates == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                "avg_pool_3x3")


def test_parse_known_string_and_round_trip():
    assert SPACE.parse(ARCH_0) == (4, 2, 1, 2, 1, 1)
    assert SPACE.format((4, 2, 1, 2, 1, 1)) == ARCH_0


def test_every_table_string_round_trips_and_indexes_itself():
    keys = load_nb201_accuracy().keys
    all_choices = SPACE.all_choices()
    assert len({tuple(row) for row in all_choices.tolist()}) == SPACE.size
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
    with pytest.raises(HwnasError, match="6 op indices"):
        SPACE.format((0, 1, 2))
    with pytest.raises(HwnasError, match="6 op indices"):
        SPACE.index_of((0, 0, 0, 0, 0, 5))
    with pytest.raises(HwnasError, match="0..15624"):
        SPACE.choices_at(15_625)
    assert not SPACE.contains((0, 0, 0, 0, 0, 5)) and SPACE.contains((4, 4, 4, 4, 4, 4))


def test_operators_stay_in_space_and_are_seeded():
    rng = np.random.default_rng(0)
    parent = SPACE.sample_choices(rng)
    for _ in range(50):
        child = SPACE.mutate_choices(parent, rng)
        assert SPACE.contains(child) and child != parent
        other = SPACE.sample_choices(rng)
        mixed = SPACE.crossover_choices(parent, other, rng)
        assert all(m in (a, b) for m, a, b in zip(mixed, parent, other))
    first = [SPACE.sample_choices(np.random.default_rng(3)) for _ in range(2)]
    assert first[0] == first[1]


def test_encode_decode_inverse():
    rng = np.random.default_rng(1)
    for _ in range(20):
        choices = SPACE.sample_choices(rng)
        vector = SPACE.encode(choices)
        assert vector.shape == (30,) and vector.sum() == 6
        assert SPACE.decode(vector) == choices
    batch = np.array([SPACE.sample_choices(rng) for _ in range(5)])
    encoded = SPACE.encode_many(batch)
    assert np.array_equal(encoded[2], SPACE.encode(batch[2]))
    with pytest.raises(HwnasError, match="not one-hot"):
        SPACE.decode(np.ones(30))
    with pytest.raises(HwnasError, match="length 30"):
        SPACE.decode(np.zeros(29))
