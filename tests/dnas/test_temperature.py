import math

import pytest

from hwnas.dnas.temperature import TEMPERATURE_DECAY, temperature_at
from hwnas.errors import HwnasError


def test_fbnet_schedule_values():
    assert temperature_at(0) == 5.0
    assert temperature_at(1) == pytest.approx(5.0 * math.exp(-0.045))
    # papers-and-peers 1.3: after 90 epochs tau ~= 0.087
    assert temperature_at(90) == pytest.approx(0.0872, abs=5e-4)
    assert TEMPERATURE_DECAY == pytest.approx(0.956, abs=5e-4)


def test_custom_schedule_is_geometric():
    values = [temperature_at(e, initial_temperature=2.0, temperature_decay=0.5) for e in range(4)]
    assert values == [2.0, 1.0, 0.5, 0.25]


@pytest.mark.parametrize(
    "epoch, initial, decay",
    [(-1, 5.0, 0.9), (1.5, 5.0, 0.9), (True, 5.0, 0.9), (0, 0.0, 0.9), (0, -1.0, 0.9),
     (0, float("nan"), 0.9), (0, 5.0, 0.0), (0, 5.0, 1.5), (0, 5.0, float("inf"))],
)
def test_bad_values_raise(epoch, initial, decay):
    with pytest.raises(HwnasError):
        temperature_at(epoch, initial_temperature=initial, temperature_decay=decay)
