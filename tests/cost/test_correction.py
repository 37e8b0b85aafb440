"""The per-key correction on problems with a known answer."""

import numpy as np
import pytest

from hwnas.cost.correction import MINIMUM, KeyCorrection, fit_key_correction
from hwnas.errors import HwnasError


def networks(count: int, seed: int = 0) -> np.ndarray:
    """count x 6 contributions ``n_k L_k``: key k held 0-3 times, latencies 0.1-0.6 ms; key 5
    is held by no network."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 4, size=(count, 6)).astype(float)
    counts[:, 5] = 0
    return counts * np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])


def test_a_key_that_runs_slower_inside_networks_is_found_and_the_others_stay_near_zero():
    contributions = networks(80)
    truth = np.array([0.0, 0.0, 0.3, 0.0, 0.0, 0.0])  # key 2 costs 30 % more in a network
    scale, offset = 1.2, 0.5
    measured = scale * (contributions * (1 + truth)).sum(1) + offset
    corrections, record = fit_key_correction(contributions, measured, scale, offset)
    assert corrections[2] == pytest.approx(0.3, abs=0.05)
    assert np.abs(np.delete(corrections, 2)).max() < 0.05
    assert corrections[5] == 0.0  # held by no network: nothing to learn
    assert record.networks == 80 and record.keys_corrected == 5 and record.keys_clipped == 0
    assert record.loo_mape_pct < record.uncorrected_mape_pct / 5


def test_noise_alone_is_shrunk_rather_than_fitted():
    contributions = networks(40, seed=1)
    rng = np.random.default_rng(2)
    measured = contributions.sum(1) * (1 + 0.02 * rng.standard_normal(40))
    corrections, record = fit_key_correction(contributions, measured, 1.0, 0.0)
    assert np.abs(corrections).max() < 0.05
    if record.applied:  # either shrunk hard, or left out for predicting no better
        assert record.penalty >= 1.0
    else:
        assert not corrections.any() and record.loo_mape_pct >= record.uncorrected_mape_pct


def test_a_price_below_zero_is_clipped_to_zero_and_counted():
    contributions = networks(40, seed=3)
    truth = np.array([-1.5, 0.0, 0.0, 0.0, 0.0, 0.0])  # what no measurement can mean
    measured = (contributions * (1 + truth)).sum(1) + 5.0
    corrections, record = fit_key_correction(contributions, measured, 1.0, 0.0)
    assert corrections[0] == MINIMUM == -1.0 and record.keys_clipped == 1


def test_an_overhead_every_network_pays_goes_to_the_intercept():
    contributions = networks(60, seed=4)
    measured = contributions.sum(1) + 0.7  # the calibration said offset 0
    corrections, record = fit_key_correction(contributions, measured, 1.0, 0.0)
    assert record.offset_ms == pytest.approx(0.7, abs=0.05)
    assert np.abs(corrections).max() < 0.05


def test_too_few_networks_or_mismatched_rows_are_one_error():
    with pytest.raises(HwnasError, match="at least 8 networks, got 5"):
        fit_key_correction(networks(5), np.ones(5), 1.0, 0.0)
    with pytest.raises(HwnasError, match="one row of contributions per measured network"):
        fit_key_correction(networks(10), np.ones(9), 1.0, 0.0)


def test_the_record_round_trips_and_refuses_bad_values():
    contributions = networks(20)
    _, record = fit_key_correction(contributions, contributions.sum(1) + 0.1, 1.0, 0.0)
    assert KeyCorrection.from_dict(record.to_dict()) == record
    for bad in (float("nan"), -1.0, True, "3"):
        with pytest.raises(HwnasError, match="loo_mape_pct"):
            KeyCorrection.from_dict({**record.to_dict(), "loo_mape_pct": bad})
