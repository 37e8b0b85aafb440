"""Energy: the RAPL powercap reader on a fake sysfs tree, and a predictor as a cost model."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.cost.energy import (
    EnergyUnavailable, PredictedCost, RaplEnergyReader, counter_delta_uj, energy_reader,
    energy_unavailable_reason,
)
from hwnas.cost.device_table import load_device_table
from hwnas.errors import HwnasError
from hwnas.predictors.gp import GaussianProcessPredictor
from hwnas.spaces import get_space


def _zone(root, name, energy, max_range=1_000_000):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "energy_uj").write_text(f"{energy}\n")
    (folder / "max_energy_range_uj").write_text(f"{max_range}\n")
    return folder


def test_counter_wrap_around():
    assert counter_delta_uj(100, 350, 1000) == 250
    assert counter_delta_uj(900, 50, 1000) == 150  # wrapped once past max_energy_range_uj


def test_reader_sums_package_zones_only(tmp_path):
    package0 = _zone(tmp_path, "intel-rapl:0", 1000)
    _zone(tmp_path, "intel-rapl:0:0", 10)  # core sub-zone: already inside package 0
    package1 = _zone(tmp_path, "intel-rapl:1", 999_000)
    reader = energy_reader(tmp_path)
    assert isinstance(reader, RaplEnergyReader) and [z.name for z in reader.zones] == [
        "intel-rapl:0", "intel-rapl:1"]
    before = reader.read()
    (package0 / "energy_uj").write_text("3000\n")
    (package1 / "energy_uj").write_text("500\n")  # wrapped
    assert reader.joules_between(before, reader.read()) == pytest.approx((2000 + 1500) * 1e-6)
    measurement = reader.measure(lambda: None, repeats=3)
    assert measurement.joules == 0 and measurement.seconds >= 0
    assert energy_unavailable_reason(tmp_path) is None


def test_unavailable_reasons(tmp_path):
    with pytest.raises(EnergyUnavailable, match="does not exist"):
        energy_reader(tmp_path / "absent")
    with pytest.raises(EnergyUnavailable, match="no intel-rapl"):
        energy_reader(tmp_path)
    reason = energy_unavailable_reason(tmp_path)
    assert reason and "\n" not in reason


def test_this_machine_gives_a_reader_or_a_one_line_reason():
    reason = energy_unavailable_reason()
    if reason is None:
        assert energy_reader().read()
    else:
        assert "\n" not in reason
        assert "energy" in reason.lower() or "rapl" in reason.lower()


def test_predicted_cost_wraps_a_fitted_predictor():
    space = get_space("fbnet-cifar100")
    table = load_device_table("pixel3")
    choices = space.decisions.sample(60, np.random.default_rng(0))
    predictor = GaussianProcessPredictor(seed=0).fit(space.encode(choices),
                                                     table.costs_choices(choices))
    cost = PredictedCost(predictor, space, name="pixel3 predicted", unit="ms")
    archs = [space.to_arch(c) for c in choices[:5]]
    assert np.allclose(cost.costs(archs), table.costs_choices(choices[:5]), rtol=1e-2)
    assert cost.cost(archs[0]) == pytest.approx(cost.costs(archs)[0])
    matrix = cost.layer_cost_matrix(space)  # first-order expansion from the base class
    assert matrix.matrix.shape == (22, 9)
    np.testing.assert_allclose(cost.choice_cost(space)(choices[:5]), cost.costs(archs))
    with pytest.raises(HwnasError, match="fitted on space 'fbnet-cifar100'"):
        cost.choice_cost(get_space("fbnet-cifar"))
