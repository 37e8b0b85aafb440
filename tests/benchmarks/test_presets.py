"""Every experiment's preset (``configs/benchmarks/``) loads into its config types, with and
without its quick values, and holds the settings its committed output in
``benchmarks/results/`` records (the runs of 2026-11-29, made before the presets existed, and
lut_fidelity's of issue 14)."""

import json
from pathlib import Path

import pytest

from benchmarks.experiments import (chamnet_cifar, chamnet_nb201, common, dnas_devices,
                                    dnas_quality, dnas_quality_seeds, dnas_search_time,
                                    lut_fidelity, metric_predictor, nb201_additive,
                                    nb201_supernet, predictor)
from hwnas import settings
from hwnas.cost.lut_config import LutBuildConfig, LutValidateConfig
from hwnas.dnas.config import SearchSettings
from hwnas.evolution.config import ChamNetConfig
from hwnas.train.recipe import TrainRecipe

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
TYPES = {
    "lut_fidelity": {"lut_build": LutBuildConfig, "lut_validate": LutValidateConfig,
                     "benchmark": lut_fidelity.FidelityConfig},
    "metric_predictor": {"benchmark": metric_predictor.MetricPredictorConfig},
    "predictor": {"benchmark": predictor.PredictorConfig},
    "chamnet_nb201": {"chamnet": ChamNetConfig, "benchmark": chamnet_nb201.ChamNetNB201Config},
    "chamnet_cifar": {"lut_build": LutBuildConfig, "chamnet": ChamNetConfig,
                      "train": TrainRecipe, "benchmark": chamnet_cifar.ChamNetCifarConfig},
    "dnas_devices": {"benchmark": dnas_devices.DevicesConfig},
    "dnas_quality": {"benchmark": dnas_quality.QualityConfig},
    "dnas_quality_seeds": {"benchmark": dnas_quality_seeds.SeedsConfig},
    "dnas_search_time": {"benchmark": dnas_search_time.SearchTimeConfig},
    "dmasking_quality": {"lut_build": LutBuildConfig},
    "nb201_additive": {"benchmark": nb201_additive.AdditiveConfig},
    "nb201_supernet": {"supernet": SearchSettings, "dnas": SearchSettings,
                       "benchmark": nb201_supernet.SupernetConfig},
}


def recorded(name):
    return json.loads((RESULTS / f"{name}.json").read_text())


def load(name, quick=False):
    return common.load_preset(name, TYPES[name], quick=quick)[0]


@pytest.mark.parametrize("name", sorted(TYPES))
@pytest.mark.parametrize("quick", [False, True])
def test_every_preset_loads(name, quick):
    assert set(load(name, quick)) == set(TYPES[name])


def test_lut_fidelity_preset_is_the_recorded_run():
    sections = load("lut_fidelity")
    build, validate = sections["lut_build"], sections["lut_validate"]
    for label, entry in recorded("lut_fidelity").items():
        stored = entry["settings"]
        assert stored["lut_build"] == settings.to_dict(build)
        assert stored["lut_validate"] == settings.to_dict(validate)
        config = lut_fidelity.engine_config(build, label)
        assert (entry["engine"]["threads"], entry["engine"]["layout"]) == \
            (config.threads, "channels_last" if config.engine == "torch" else "contiguous")
    assert sections["benchmark"].engines == tuple(recorded("lut_fidelity"))


def test_metric_predictor_preset_is_the_recorded_run():
    own, stored = load("metric_predictor")["benchmark"], recorded("metric_predictor")["metadata"]
    assert (list(own.sizes), own.seeds, own.test_size, own.test_seed, own.batch_size,
            list(own.methods), own.bo_candidates) == \
        (stored["sizes"], len(stored["seeds"]), stored["test_size"], stored["test_seed"],
         stored["batch_size"], stored["methods"], stored["bo_candidates_per_round"])
    assert set(own.datasets) == set(stored["encodings"])
    assert set(own.devices) == set(recorded("metric_predictor")["nb201"])


def test_predictor_preset_is_the_recorded_run():
    own, stored = load("predictor")["benchmark"], recorded("predictor")
    assert (own.column, own.test_cells, own.seeds) == \
        (stored["column"], stored["test_cells"], stored["seeds"])
    for sizes in stored["kendall_tau_median"].values():
        assert [int(size) for size in sizes] == list(own.sizes)


def test_chamnet_nb201_preset_is_the_recorded_run():
    sections, stored = load("chamnet_nb201"), recorded("chamnet_nb201_summary")
    own, chamnet = sections["benchmark"], sections["chamnet"]
    assert (own.seeds, list(own.percentiles), list(own.counts)) == \
        (stored["seeds"], stored["percentiles"], stored["counts"])
    assert {"initial_samples": chamnet.initial_samples, "batch_size": chamnet.batch_size} == \
        stored["chamnet"]
    assert {"population": own.rea_population, "sample_size": own.rea_sample_size} == \
        stored["rea"]
    assert stored["protocols"] == {"oracle": own.accuracy_column, "proxy": own.search_column}
    assert own.devices is None and len(stored["devices"]) == 7  # every column of the table
    assert chamnet.evaluations == max(own.counts)


def test_chamnet_cifar_preset_is_the_recorded_run():
    sections, stored = load("chamnet_cifar"), recorded("chamnet_cifar")
    chamnet, own = sections["chamnet"], sections["benchmark"]
    assert (chamnet.evaluations, chamnet.evaluator_epochs, chamnet.train_per_class,
            chamnet.valid_per_class, own.margin) == \
        (stored["evaluations"], stored["epochs"], stored["train_per_class"],
         stored["valid_per_class"], stored["margin"])
    # the script of that day: half the evaluations at random, batches of a sixth
    assert (chamnet.initial_samples, chamnet.batch_size) == (6, 2)
    assert stored["lut"] == f"lut-{sections['lut_build'].space}-ort-1t.json"
    assert sections["train"].threads == 1 and sections["train"].batch_size == 64


def test_dnas_experiment_presets_are_the_recorded_runs():
    devices = load("dnas_devices")["benchmark"]
    assert devices.devices == tuple(recorded("dnas_devices")["accuracy"])
    assert tuple(recorded("dnas_devices_bound")["targets"]) == ("reference",) + tuple(
        f"capacity-matched-{level}" for level in devices.capacity_levels)
    seeds = load("dnas_quality_seeds")["benchmark"]
    assert [int(seed) for seed in recorded("dnas_quality_seeds")["seeds"]] == list(seeds.seeds)
    assert load("dnas_search_time")["benchmark"].limit_minutes == \
        recorded("dnas_search_time")["limit_minutes"]
    widths = [row["width"] for row in recorded("dnas_quality")["mobilenet_v2"]]
    assert widths == list(common.DnasSettings.load().benchmark.mobilenet_widths)
