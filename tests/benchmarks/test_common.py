"""The shared pieces of the experiments (``benchmarks/experiments/common.py``) on real inputs:
the presets in ``configs/benchmarks/``, the HW-NAS-Bench device tables, and numbers recorded in
``benchmarks/results/`` by the code before the presets (2026-11-29)."""

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.experiments import common
from benchmarks.experiments.dmasking_quality import search_config
from hwnas import settings
from hwnas.arch.spec import ArchSpec
from hwnas.cost.device_table import load_device_table
from hwnas.cost.flops import FlopsCost
from hwnas.data.cifar import CifarArrays
from hwnas.dnas.layerwise import LayerwiseProblem
from hwnas.dnas.result import DerivedArchitecture, SearchResult
from hwnas.errors import HwnasError
from hwnas.spaces import get_space

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
TRANSITIONS = (1, 5, 9, 13, 17, 21)
#: the stored search settings of the recorded "local" search (its config.json, 2026-11-29):
#: explicit fixed layers, no fix_transitions, subset or batch size (older code stored none)
RECORDED_SEARCH = {
    "epochs": 5, "warmup_epochs": 0, "weight_lr": 0.025, "momentum": 0.9,
    "weight_decay": 0.0001, "weight_grad_clip": 5.0, "theta_lr": 0.05,
    "theta_weight_decay": 0.0005, "initial_temperature": 5.0,
    "temperature_decay": 0.9559974818331, "alpha": 0.2, "beta": 0.6,
    "target_latency": None, "target_form": "absolute", "mode": "sampled", "seed": 0,
    "checkpoint_every": 62, "num_samples": 8, "device": "cpu",
    "warm_start": "benchmarks/results/dnas_work/warmup/checkpoint.pt",
    "fixed_layers": [[layer, "k3_e6"] for layer in TRANSITIONS],
    "theta_estimator": "reinforce", "paths_per_batch": 4}
#: the recorded shared warm-up's stored settings (theta settings at that code's defaults)
RECORDED_WARMUP = {**RECORDED_SEARCH, "epochs": 6, "warmup_epochs": 6, "theta_lr": 0.01,
                   "target_form": "budget", "num_samples": 1, "warm_start": None,
                   "theta_estimator": "gumbel"}


@pytest.fixture(scope="module")
def budget():
    return common.DnasSettings.load()


@pytest.fixture(scope="module")
def raspi4():
    return load_device_table("raspi4", allow_num_classes_mismatch=True)


def recorded(name):
    return json.loads((RESULTS / f"{name}.json").read_text())


def test_the_preset_is_the_recorded_budget(budget):
    # every Budget field of the recorded runs (threads: how fast, not what)
    stored = {key: value for key, value in recorded("dnas_devices")["budget"].items()
              if key != "threads"}
    current = budget.legacy_budget()
    assert {key: current[key] for key in stored} == stored
    assert budget.train.eval_every == budget.train.epochs == 10


def test_the_quick_preset_changes_only_what_it_names(budget):
    quick = common.DnasSettings.load(quick=True)
    assert (quick.dnas.subset_per_class, quick.dnas.epochs) == (40, 2)
    assert quick.benchmark.warmup_epochs == 1
    assert settings.replace(quick.dnas, subset_per_class=1000, epochs=5) == budget.dnas
    assert quick.train.lr == budget.train.lr


def test_a_preset_must_give_every_benchmark_setting(tmp_path):
    path = tmp_path / "dnas.yaml"
    sections = settings.load_file(common.preset_path("dnas"))
    del sections["benchmark"]["warmup_epochs"]
    path.write_text(json.dumps(sections))
    with pytest.raises(HwnasError, match="warmup_epochs"):
        common.DnasSettings.load(path=path)


@pytest.mark.parametrize("variant, suffix", [
    (common.Variant(), ""),
    (common.Variant(loss="absolute"), ""),
    (common.Variant(loss="fbnet"), "-fbnet-loss"),
    (common.Variant(loss="budget"), "-budget-loss"),
    (common.Variant(capacity_level="k5_e3"), "-capacity-k5_e3"),
    (common.Variant(weight_sharing="nested"), "-nested"),
    (common.Variant(weight_sharing="nested", residual_scale=0.25), "-nested-scale0.25"),
    (common.Variant(residual_scale=1.0), "-scale1"),
    (common.Variant(weight_sharing="independent", residual_scale=0.0), ""),
])
def test_variant_suffixes_name_the_cached_folders(budget, variant, suffix):
    assert variant.suffix(budget.dnas) == suffix


def test_a_variant_without_target_takes_no_capacity_level():
    with pytest.raises(HwnasError, match="no target"):
        common.Variant(loss="fbnet", capacity_level="k5_e3")


def test_variant_configs(budget):
    fbnet = common.Variant(loss="fbnet").config(budget.dnas)
    assert fbnet.target_latency is None and fbnet.target_form == "budget"
    assert common.Variant(loss="budget").config(budget.dnas).target_form == "budget"
    nested = common.Variant(weight_sharing="nested", residual_scale=1.0).config(budget.dnas)
    assert (nested.weight_sharing, nested.residual_scale) == ("nested", 1.0)
    warmup = common.warmup_config(budget, common.Variant())
    assert warmup.epochs == warmup.warmup_epochs == budget.benchmark.warmup_epochs == 6
    assert warmup.target_latency is None and warmup.warm_start is None


def test_the_work_folder_refuses_another_budget(tmp_path, budget):
    identity = budget.identity()
    common.check_work_folder(tmp_path, identity)
    common.check_work_folder(tmp_path, identity)  # the same settings: accepted
    other = json.loads(json.dumps(identity))
    other["dnas"]["theta_lr"] = 0.1
    with pytest.raises(HwnasError, match="dnas.theta_lr"):
        common.check_work_folder(tmp_path, other)


def test_threads_are_not_part_of_the_work_folder_identity(tmp_path, budget):
    common.check_work_folder(tmp_path, budget.identity())
    faster = common.DnasSettings(
        budget.lut_build, settings.replace(budget.dnas, threads=1),
        settings.replace(budget.train, threads=1), budget.benchmark)
    common.check_work_folder(tmp_path, faster.identity())


def test_a_legacy_work_folder_is_compared_in_its_own_layout(tmp_path, budget):
    legacy = {**recorded("dnas_devices")["budget"], "threads": 1}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "budget.json").write_text(json.dumps(legacy))
    common.check_work_folder(tmp_path / "old", budget.identity(), budget.legacy_budget())
    assert (tmp_path / "old" / "settings.json").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "budget.json").write_text(json.dumps({**legacy, "search_epochs": 4}))
    with pytest.raises(HwnasError, match="search_epochs"):
        common.check_work_folder(tmp_path / "other", budget.identity(), budget.legacy_budget())


def test_reference_and_capacity_matched_targets_on_the_device_table(budget, raspi4):
    assert common.reference_target(raspi4, budget) == recorded("dnas_devices_bound")[
        "targets"]["reference"]["raspi4"]
    target = common.capacity_matched_target(raspi4, budget, "k5_e3")
    assert target == pytest.approx(recorded("dnas_devices_loss")[
        "capacity_matched_targets"]["raspi4"], rel=1e-12)
    space, flops = budget.space, FlopsCost()
    needed = flops.cost(space.uniform_arch("k5_e3"))
    found = space.to_arch(common.largest_within(flops, raspi4, budget, target, None))
    assert raspi4.cost(found) <= target and flops.cost(found) >= needed
    cheaper = common.largest_within(flops, raspi4, budget, 0.999 * target, None)
    assert flops.cost(space.to_arch(cheaper)) < needed


def test_largest_within_keeps_the_fixed_layers_and_the_band(budget, raspi4):
    target = common.reference_target(raspi4, budget)
    choices = common.largest_within(FlopsCost(), raspi4, budget, target, 0.95 * target)
    arch = budget.space.to_arch(choices)
    assert arch.to_string() == recorded("dnas_devices_bound")["rules"]["reference/mflops"][
        "archs"]["raspi4"]
    assert 0.95 * target <= raspi4.cost(arch) <= target
    k3_e6 = budget.space.candidates.index("k3_e6")
    assert [choices[layer] for layer in TRANSITIONS] == [k3_e6] * len(TRANSITIONS)
    everything = raspi4.cost(budget.space.uniform_arch("k5_e6"))
    largest = common.largest_within(FlopsCost(), raspi4, budget, everything, None)
    k5_e6 = budget.space.candidates.index("k5_e6")
    assert [choice for layer, choice in enumerate(largest) if layer not in TRANSITIONS] == \
        [k5_e6] * 16


def hand_made_result(space, preferred, target):
    """A SearchResult whose P_theta puts 0.6 on ``preferred``'s candidate at every searched
    layer (the rest spread), 1 on k3_e6 at the transition layers."""
    probabilities = np.full((space.num_layers, space.num_candidates), 0.05)
    for layer, choice in enumerate(preferred):
        probabilities[layer, choice] = 0.6
        if layer in TRANSITIONS:
            probabilities[layer] = 0.0
            probabilities[layer, space.candidates.index("k3_e6")] = 1.0
    argmax = DerivedArchitecture(space.to_arch(preferred).to_string(), tuple(preferred), 0.0, 0.0)
    return SearchResult(space.name, space.candidates, "raspi4", "ms", 5, 0, target, 1.0, 0.0,
                        argmax, (), tuple(map(tuple, probabilities)))


def test_derived_network_is_the_most_probable_within_the_band(budget, raspi4):
    space = budget.space
    searched = ArchSpec.from_string(recorded("dnas_devices")["archs"]["raspi4"])
    target = common.reference_target(raspi4, budget)
    result = hand_made_result(space, space.choices_of(searched), target)
    assert common.derived_network(result, raspi4, budget) == searched
    # no target (FBNet's loss): held to the device's reference target
    untargeted = hand_made_result(space, space.choices_of(searched), None)
    assert common.derived_network(untargeted, raspi4, budget) == searched
    # the all-skip preference is below the band: the answer moves up into it
    skips = [space.candidates.index("skip")] * space.num_layers
    derived = common.derived_network(hand_made_result(space, skips, target), raspi4, budget)
    assert 0.95 * target <= raspi4.cost(derived) <= target
    # nothing of the space fits a target below its cheapest network: the argmax
    tiny = hand_made_result(space, skips, 1.0)
    assert common.derived_network(tiny, raspi4, budget) == space.to_arch(skips)


def test_a_cached_search_is_read_only_with_the_same_settings(budget, raspi4):
    space = budget.space
    config = settings.replace(budget.dnas, target_latency=33.0, warm_start="work/warm.pt")
    problem_cost = LayerwiseProblem(space, raspi4, config).describe()["cost_model"]
    saved = {"search": {**RECORDED_SEARCH, "target_latency": 33.0},
             "cost_model": json.loads(json.dumps(problem_cost))}
    assert common.search_difference(saved, config, space, raspi4) is None
    assert common.search_difference(saved, settings.replace(config, weight_lr=0.1), space,
                                    raspi4) == "search.weight_lr"
    assert common.search_difference(saved, settings.replace(config, fix_transitions=None),
                                    space, raspi4) == "search.fixed_layers"
    pixel3 = load_device_table("pixel3", allow_num_classes_mismatch=True)
    assert common.search_difference(saved, config, space, pixel3).startswith("cost_model")


def test_a_cached_warm_up_ignores_the_settings_that_train_no_weights(budget, raspi4):
    space, config = budget.space, common.warmup_config(budget, common.Variant())
    cost = LayerwiseProblem(space, raspi4, config).describe()["cost_model"]
    saved = {"search": RECORDED_WARMUP, "cost_model": json.loads(json.dumps(cost))}
    assert common.search_difference(saved, config, space, raspi4, weights_only=True) is None
    assert common.search_difference(saved, config, space, raspi4) is not None
    pixel3 = load_device_table("pixel3", allow_num_classes_mismatch=True)
    assert common.search_difference(saved, config, space, pixel3, weights_only=True) is None
    shorter = settings.replace(config, epochs=5, warmup_epochs=5)
    assert common.search_difference(saved, shorter, space, raspi4,
                                    weights_only=True) == "search.epochs"


def test_a_cached_training_of_another_network_is_refused(tmp_path, budget):
    space = budget.space
    arch, other = space.uniform_arch("k3_e3"), space.uniform_arch("skip")
    data = CifarArrays(np.zeros((10, 32, 32, 3), np.uint8), np.arange(10),
                              np.zeros((10, 32, 32, 3), np.uint8), np.arange(10),
                              tuple(map(str, range(10))), "test")
    (tmp_path / "config.json").write_text(json.dumps({
        "arch": arch.to_string(), "recipe": budget.train.to_dict(),
        "data": {"fingerprint": data.fingerprint()}}))
    (tmp_path / "result.json").write_text(json.dumps({"final_top1": 61.0}))
    assert common.finished_training(tmp_path, arch, budget.train, data)["final_top1"] == 61.0
    with pytest.raises(HwnasError, match="'arch' differs"):
        common.finished_training(tmp_path, other, budget.train, data)
    with pytest.raises(HwnasError, match="recipe.lr"):
        common.finished_training(tmp_path, arch, settings.replace(budget.train, lr=0.1), data)


def test_an_unfinished_run_of_older_code_is_not_resumed(tmp_path):
    assert not common.resumable(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"search": {}}))
    with pytest.raises(HwnasError, match="older code"):
        common.resumable(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"command": "dnas", "search": {}}))
    assert common.resumable(tmp_path)


def test_the_control_network_is_within_the_band_with_the_fixed_layers(budget, raspi4):
    target = common.reference_target(raspi4, budget)
    arch = common.random_at_target(raspi4, target, budget)
    assert 0.95 * target <= raspi4.cost(arch) <= target
    assert arch == common.random_at_target(raspi4, target, budget)  # seeded by the preset
    choices = budget.space.choices_of(arch)
    assert {choices[layer] for layer in TRANSITIONS} == {budget.space.candidates.index("k3_e6")}


def test_interpolation_along_the_mobilenet_family():
    baseline = [{"width": 0.5, "latency_ms": 1.0, "top1": 50.0},
                {"width": 1.0, "latency_ms": 2.0, "top1": 60.0}]
    comparison = common.interpolate_baseline(baseline, 1.5, 58.0)
    assert comparison["mobilenet_v2_top1_at_searched_latency"] == pytest.approx(55.0)
    assert comparison["accuracy_gain_points"] == pytest.approx(3.0)
    assert comparison["speedup_at_equal_accuracy"] == pytest.approx(2.0 / 1.5)
    assert common.interpolate_baseline(baseline, 3.0, 70.0)["accuracy_gain_points"] is None


def test_the_dmasking_search_takes_the_fbnet_searches_settings(budget):
    space = get_space("dmasking-cifar", "dmasking")
    sections, _ = common.preset_mappings("dmasking_quality")
    config = search_config(budget, sections["dmasking"], space, 1.8821165000000002)
    # the recorded DMasking search's settings (its config.json, 2026-11-29)
    assert (config.epochs, config.warmup_epochs, config.theta_estimator, config.cost_mode) == \
        (11, 6, "gumbel", "effective")
    assert config.fixed_layers == tuple((layer, "k3_e6") for layer in (0, 1, 5, 9, 13, 17, 21))
    shared = ("subset_per_class", "batch_size", "weight_lr", "theta_lr", "target_form",
              "num_samples", "seed", "weight_grad_clip", "temperature_decay")
    assert [getattr(config, name) for name in shared] == [getattr(budget.dnas, name)
                                                          for name in shared]
