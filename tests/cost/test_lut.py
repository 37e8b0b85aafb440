"""Latency tables: prediction math, JSON round trip, malformed files, refusals, calibration."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from hwnas.arch.zoo import get_model_spec
from hwnas.cost.base import CostModel
from hwnas.cost.calibration import Calibration, fit_calibration
from hwnas.cost.engines import OrtEngine, TorchEngine
from hwnas.cost.flops import FlopsCost
from hwnas.cost.lut import LatencyTable, LutEntry, LutError
from hwnas.cost.lut_config import LutBuildConfig
from hwnas.cost.lutbuild import calibration_archs, open_table
from hwnas.cost.opkey import op_keys, space_keys
from hwnas.cost.validate import (
    LutValidateConfig, fidelity_metrics, validate_lut, validation_archs,
)
from hwnas.errors import HwnasError
from hwnas.spaces import get_space

from ..helpers import sample_arch

SPACE = get_space("fbnet-cifar")
BUILD = LutBuildConfig(warmup=1, repeats=3, processes=2, sessions=1)


def session(value: float, process: int = 0) -> dict:
    return {"item": "x", "process": process, "session": 0, "block": f"{process}.0.0",
            "median_ms": value, "p10_ms": value, "p90_ms": 2 * value, "count": 3}


def synthetic_table(calibration: Calibration | None = None) -> LatencyTable:
    """Entries with made-up latencies (0.01 ms * (index + 1)): tests of the math, not timings."""
    entries = {}
    for index, key in enumerate(space_keys(SPACE)):
        value = 0.01 * (index + 1)
        entries[key] = LutEntry(key, value, 1.0, [session(value), session(1.1 * value, 1)])
    return LatencyTable(space=SPACE.lut_metadata(), engine=OrtEngine().metadata(),
                        timing=BUILD.measurement(), entries=entries, calibration=calibration)


def calibration(scale: float, offset: float) -> Calibration:
    return Calibration("affine", scale, offset, {}, [], "test", {})


def test_a_format_1_table_reads_as_the_median_of_its_round_medians(tmp_path):
    data = synthetic_table().to_dict()
    data["version"], data["timing"] = 1, {"warmup": 1, "repeats": 3, "rounds": 3}
    del data["build"]
    for entry in data["entries"]:
        del entry["sessions"], entry["spread_pct"]
        entry["rounds"] = [{"median_ms": m, "p10_ms": 0.0, "p90_ms": 9.0, "count": 2}
                           for m in (3.0, 1.0, 2.0)]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    table = LatencyTable.load(path)
    assert table.version == 1 and table.is_complete(SPACE)
    assert all(entry.latency_ms == 2.0 for entry in table.entries.values())
    assert table.build.references == {}
    with pytest.raises(LutError, match="format-1 table, read only"):
        table.save(tmp_path / "again.json")
    with pytest.raises(LutError, match="format-1 table of an older hwnas"):
        open_table(path, SPACE, OrtEngine(), BUILD)


def test_predict_is_sum_of_entries_times_scale_plus_overhead():
    table = synthetic_table(calibration(1.25, 0.3))
    assert isinstance(table, CostModel)
    arch = sample_arch(SPACE, 1)
    total = sum(table.entries[key].latency_ms for key in op_keys(arch))
    assert table.raw_sum(arch) == pytest.approx(total)
    assert table.cost(arch) == pytest.approx(1.25 * total + 0.3)
    assert synthetic_table().cost(arch) == pytest.approx(total)  # uncalibrated: FBNet's Eq. 5


def test_per_key_corrections_price_layers_but_leave_the_raw_sum_alone():
    table = synthetic_table(calibration(1.25, 0.3))
    arch = sample_arch(SPACE, 1)
    keys = op_keys(arch)
    table.entries[keys[1]].correction = 0.5  # this layer's key costs 50 % more in a network
    total = sum(table.entries[key].latency_ms for key in keys)
    extra = 0.5 * table.entries[keys[1]].latency_ms * keys.count(keys[1])
    assert table.raw_sum(arch) == pytest.approx(total)
    assert table.corrected_sum(arch) == pytest.approx(total + extra)
    assert table.cost(arch) == pytest.approx(1.25 * (total + extra) + 0.3)
    matrix = table.layer_cost_matrix(SPACE)  # DNAS and the GA add up the same prices
    assert matrix.total(SPACE.choices_of(arch)) == pytest.approx(table.cost(arch))


def test_layer_cost_matrix_is_exact():
    table = synthetic_table(calibration(1.1, 0.5))
    matrix = table.layer_cost_matrix(SPACE)
    assert matrix.matrix.shape == (SPACE.num_layers, SPACE.num_candidates)
    for choices in SPACE.decisions.sample(10, np.random.default_rng(2)):
        assert matrix.total(choices) == pytest.approx(table.cost(SPACE.to_arch(choices)))


def test_json_round_trip(tmp_path):
    table = synthetic_table(fit_calibration([1.0, 2.0, 3.0, 4.0], [1.3, 2.3, 3.4, 4.3],
                                            ["a", "b", "c", "d"], {"networks": 4}))
    path = tmp_path / "lut.json"
    table.save(path)
    again = LatencyTable.load(path)
    assert again.entries.keys() == table.entries.keys()
    assert all(again.entries[k] == table.entries[k] for k in table.entries)
    assert again.calibration == table.calibration and again.timing == table.timing
    assert again.correction == table.correction
    assert again.build == table.build
    arch = sample_arch(SPACE, 3)
    assert again.cost(arch) == pytest.approx(table.cost(arch))
    assert json.loads(path.read_text())["format"] == "hwnas-latency-lut"


def corrupt(data: dict, change: str) -> object:
    if change == "format":
        data["format"] = "pickle"
    elif change == "version":
        data["version"] = 99
    elif change == "space":
        del data["space"]["resolution"]
    elif change == "engine":
        del data["engine"]["cpu"]
    elif change == "entries":
        data["entries"] = {"a": 1}
    elif change == "stats":
        data["entries"][0]["sessions"][0]["median_ms"] = "slow"
    elif change == "key":
        data["entries"][0]["key"]["params"]["stride"] = 7
    elif change == "duplicate":
        data["entries"].append(data["entries"][0])
    elif change == "calibration":
        data["calibration"] = {"method": "magic"}
    elif change == "correction":
        data["entries"][0]["correction"] = -1.5  # a negative price
    elif change == "correction-nan":
        data["entries"][0]["correction"] = float("nan")
    elif change == "correction-record":
        data["correction"] = {"networks": 60}
    elif change == "timing":
        del data["timing"]["repeats"]
    elif change == "list":
        return [data]
    return data


@pytest.mark.parametrize("change", ["format", "version", "space", "engine", "entries", "stats",
                                    "key", "duplicate", "calibration", "correction",
                                    "correction-nan", "correction-record", "timing", "list"])
def test_malformed_files_give_one_clear_error(tmp_path, change):
    data = synthetic_table().to_dict()
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(corrupt(data, change)))
    with pytest.raises(LutError, match=str(path).replace("\\", "\\\\")):
        LatencyTable.load(path)


def test_not_json_and_missing_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"format": "hwnas-latency-lut", ')
    with pytest.raises(HwnasError, match="not valid JSON"):
        LatencyTable.load(path)
    with pytest.raises(HwnasError, match="not found"):
        LatencyTable.load(tmp_path / "none.json")


def test_refuses_other_space_and_resolution():
    table = synthetic_table()
    imagenet_arch = sample_arch(get_space("fbnet-imagenet"))
    with pytest.raises(LutError, match=r"fbnet-cifar at 32 px.*224 px"):
        table.cost(imagenet_arch)
    with pytest.raises(LutError, match=r"fbnet-cifar at 32 px.*fbnet-imagenet at 224 px"):
        table.layer_cost_matrix(get_space("fbnet-imagenet"))
    cifar100_arch = sample_arch(get_space("fbnet-cifar100"))
    with pytest.raises(LutError, match=r"fbnet-cifar .*head.*fbnet-cifar100"):
        table.cost(cifar100_arch)
    with pytest.raises(LutError, match="fbnet-cifar at 32 px.*224 px"):
        table.cost(get_model_spec("fbnet_c"))


def test_missing_key_is_refused():
    table = synthetic_table()
    arch = sample_arch(SPACE, 4)
    del table.entries[op_keys(arch)[5]]
    with pytest.raises(LutError, match=r"no entry for blocks\.4"):
        table.cost(arch)


def test_resume_refuses_other_engine_timing_or_space(tmp_path):
    path = tmp_path / "lut.json"
    synthetic_table().save(path)
    assert len(open_table(path, SPACE, OrtEngine(), BUILD).entries) == 110
    with pytest.raises(HwnasError, match=r"onnxruntime.*torch"):
        open_table(path, SPACE, TorchEngine(), BUILD)
    with pytest.raises(HwnasError, match="threads"):
        open_table(path, SPACE, OrtEngine(threads=2), BUILD)
    with pytest.raises(LutError, match="'repeats': 4"):
        open_table(path, SPACE, OrtEngine(), dataclasses.replace(BUILD, repeats=4))
    with pytest.raises(LutError, match="'processes': 3"):
        open_table(path, SPACE, OrtEngine(), dataclasses.replace(BUILD, processes=3))
    with pytest.raises(LutError, match=r"fbnet-cifar at 32 px.*fbnet-imagenet"):
        open_table(path, get_space("fbnet-imagenet"), OrtEngine(), BUILD)


def test_validation_refuses_another_machine_engine():
    table = synthetic_table()
    table.engine["cpu"] = "Imaginary CPU 9000"
    with pytest.raises(HwnasError, match=r"cpu.*Imaginary CPU 9000"):
        validate_lut(table, LutValidateConfig(n=2))


def test_a_table_is_complete_when_every_key_has_a_fitted_latency():
    table = synthetic_table()
    keys = space_keys(SPACE)
    assert table.is_complete(SPACE)
    table.entries[keys[0]].latency_ms = None
    assert not table.is_complete(SPACE)
    del table.entries[keys[0]]
    assert not table.is_complete(SPACE)


def test_calibration_recovers_known_corrections():
    sums = np.linspace(2.0, 8.0, 10)
    affine = fit_calibration(sums, 1.3 * sums + 0.4, [str(i) for i in range(10)], {})
    assert affine.method == "affine"
    assert (affine.scale, affine.offset_ms) == pytest.approx((1.3, 0.4))
    scale = fit_calibration(sums, 1.3 * sums * (1 + 0.01 * np.sin(sums)), list("abcdefghij"), {})
    assert scale.method == "scale" and scale.scale == pytest.approx(1.3, rel=0.02)
    offset = fit_calibration(sums, sums - 0.05 + 0.001 * np.cos(7 * sums), list("abcdefghij"), {})
    assert offset.method == "offset" and offset.offset_ms == pytest.approx(-0.05, abs=0.002)
    assert set(offset.fits) == {"offset", "scale", "affine"}
    assert Calibration.from_dict(json.loads(json.dumps(offset.to_dict()))) == offset


def test_calibration_and_validation_networks_are_disjoint():
    table = synthetic_table()
    archs = calibration_archs(SPACE, 8, np.random.default_rng(1))
    flops = [FlopsCost().cost(arch) for arch in archs]
    assert len(archs) == 8 and flops == sorted(flops) and flops[0] < flops[-1]
    table.calibration = Calibration("offset", 1.0, 0.0, {}, [{"arch": a.to_string()}
                                                               for a in archs], "", {})
    validation = validation_archs(table, SPACE, 20, seed=0)
    assert len({a.to_string() for a in validation}) == 20
    assert not {a.to_string() for a in validation} & {a.to_string() for a in archs}


def test_fidelity_metrics_math():
    measured = np.array([1.0, 2.0, 3.0, 4.0])
    predicted = np.array([1.04, 2.3, 2.85, 4.0])  # errors 4 %, 15 %, -5 %, 0 %
    metrics = fidelity_metrics(predicted, measured)
    assert metrics["mape"] == pytest.approx(100 * (0.04 + 0.15 + 0.05 + 0) / 4)
    assert metrics["within_5pct"] == 75.0 and metrics["within_10pct"] == 75.0
    assert metrics["spearman"] == pytest.approx(1.0) and metrics["kendall"] == pytest.approx(1.0)
    with pytest.raises(HwnasError):
        fidelity_metrics([1.0], [1.0, 2.0])


def test_a_space_that_searches_resolution_prices_every_listed_resolution():
    """DMasking networks come at 24, 28 or 32 px: the table accepts the resolutions its space
    lists (and calibrates on them), and still refuses any other."""
    space = get_space("dmasking-cifar")
    entries = {key: LutEntry(key, 0.01) for key in space_keys(space)}
    table = LatencyTable(space=space.lut_metadata(), engine=OrtEngine().metadata(),
                         entries=entries)
    rng = np.random.default_rng(0)
    resolutions = {arch.resolution for arch in calibration_archs(space, 12, rng)}
    assert resolutions <= {24, 28, 32} and len(resolutions) > 1
    arch = sample_arch(space, 5)
    assert table.cost(arch) == pytest.approx(0.01 * (len(arch.blocks) + 2))
    with pytest.raises(LutError, match="20 px"):
        table.cost(dataclasses.replace(arch, resolution=20))


def test_an_edited_scale_is_refused_and_a_negative_prediction_is_never_returned(tmp_path):
    data = synthetic_table(calibration(1.0, 0.0)).to_dict()
    data["calibration"]["scale"] = -1.0
    path = tmp_path / "scale.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LutError, match="scale must be positive"):
        LatencyTable.load(path)
    table = synthetic_table(calibration(1.0, -1000.0))  # an offset edited far below zero
    arch = sample_arch(SPACE, 0)
    with pytest.raises(LutError, match="predicts -9.* ms .*a latency must be >= 0"):
        table.cost(arch)
    choices = SPACE.decisions.sample(3, np.random.default_rng(0))
    with pytest.raises(HwnasError, match="must be a finite number >= 0"):
        table.choice_cost(SPACE)(choices)
