"""Does the network DMaskingNAS (FBNetV2) finds for this CPU beat MobileNetV2 and FBNet DNAS?

Method: the protocol of ``dnas_quality`` and its work folder (``benchmarks/work/dnas``): one
identical search budget and one identical training recipe on CIFAR-10 for every network
(``configs/benchmarks/dnas.yaml``), latency timed end to end with ONNX Runtime (1 thread, batch 1)
in one interleaved session. The DMasking search (``configs/benchmarks/dmasking_quality.yaml``):

* space ``dmasking-cifar`` (FBNet CIFAR stages, 2-3 widths per stage, 24/28/32 px, 6 blocks);
* cost: this CPU's ONNX Runtime LUT of the space (its ``lut_build`` section, built here once,
  resumably; uncalibrated, since its calibration networks would span three resolutions),
  FBNetV2's effective-shape cost (:mod:`hwnas.dnas.dmasking_cost`);
* the FBNet searches' settings (data, rates, target form, seed) with their warm-up epochs as
  weights-only epochs and their search epochs after them (no shared warm-up: another supernet),
  T = the cost of the full-width 32 px network with the reference candidate at every layer (the
  FBNet searches' rule), and the first layer of every stage fixed to their transition candidate
  (widths and resolution stay searched there); what differs is the preset's ``dmasking`` section.

The network trained is the most probable one within the target (within [0.95 T, T], as for the
FBNet searches: :func:`hwnas.dnas.masked.derive_within_target`); the argmax is reported beside
it. It runs at its chosen resolution, so it is trained and tested on CIFAR-10 resized to that
resolution (:func:`hwnas.data.batches.cifar_at_resolution`) and timed at it. Writes
``benchmarks/results/dmasking_quality.json``::

    {"searched": [{"arch", "resolution", "latency_ms", "predicted_cost", "top1"}],
     "mobilenet_v2": [{"width", "latency_ms", "top1"}], "fbnet_dnas": {...},
     "comparison": {...}, "comparison_with_fbnet_dnas": {...}, ...}

and ``dmasking_quality.png``. Run (the MobileNetV2 trainings and the FBNet DNAS search are
shared with ``dnas_quality``)::

    python -m benchmarks.experiments.dmasking_quality                 # resumable
    python -m benchmarks.experiments.dmasking_quality --skip-latency  # compute only
    python -m benchmarks.experiments.dmasking_quality --quick --cost flops --no-fbnet-dnas
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from benchmarks.experiments import common
from hwnas import settings
from hwnas.arch.spec import ArchSpec
from hwnas.cost.base import CostModel
from hwnas.cost.flops import FlopsCost
from hwnas.cost.lut_config import LutBuildConfig
from hwnas.cost.opkey import space_keys
from hwnas.data.cifar import CifarArrays
from hwnas.dnas.config import DMaskingConfig, SearchSettings
from hwnas.dnas.data import search_batches
from hwnas.dnas.dmasking_cost import DMaskingCost, ShapeCostTables
from hwnas.dnas.masked import MaskedProblem, derive_within_target, run_dmasking
from hwnas.dnas.result import SearchResult, lower_bound
from hwnas.spaces import get_space
from hwnas.spaces.dmasking import DMaskingSpace

NAME = "dmasking_quality"
SPACE = "dmasking-cifar"


def search_config(budget: common.DnasSettings, own: Mapping[str, Any], space: DMaskingSpace,
                  target: float) -> DMaskingConfig:
    """The DMasking search's settings (module docstring): the FBNet searches' with their
    warm-up and search epochs in one run, the first layer of every stage fixed, target ``T``,
    and the preset's ``dmasking`` section (``own``) on top."""
    search, warmup = budget.dnas, budget.benchmark.warmup_epochs
    shared = {field.name: getattr(search, field.name)
              for field in dataclasses.fields(SearchSettings)}
    fixed = () if search.fix_transitions is None else tuple(
        (layer.index, search.fix_transitions) for layer in space.layers if layer.first)
    shared.update(epochs=warmup + search.epochs, warmup_epochs=warmup, fixed_layers=fixed,
                  target_latency=target)
    return settings.from_mapping(DMaskingConfig, {**shared, **own}, f"{NAME} [dmasking]")


def reference_target(tables: ShapeCostTables, budget: common.DnasSettings) -> float:
    """T: the cost of the full-width 32 px network with the reference block at every layer."""
    space = tables.space
    choices = list(space.largest_choices())
    for layer in space.layers:
        choices[space.first_layer_decision + layer.index] = layer.candidates.index(
            budget.benchmark.reference_candidate)
    return tables.cost_of_choices(tuple(choices))


def search(cost_model: CostModel, data: CifarArrays, budget: common.DnasSettings,
           own: Mapping[str, Any], work: Path) -> tuple[SearchResult, ShapeCostTables]:
    """The DMasking search for ``cost_model``, cached as ``search-dmasking-<cost name>``."""
    space = get_space(SPACE, "dmasking")
    mode = settings.from_mapping(DMaskingConfig, own, f"{NAME} [dmasking]").cost_mode
    tables = ShapeCostTables(space, cost_model, mode=mode)
    config = search_config(budget, own, space, reference_target(tables, budget))
    run_dir = work / f"search-dmasking-{cost_model.name.replace(' ', '_')}"

    def difference(saved: Mapping[str, Any]) -> str | None:
        return common.stored_difference(
            DMaskingConfig, saved.get("search") or {}, settings.to_dict(config),
            saved.get("cost_model"), MaskedProblem(space, cost_model, config).describe()[
                "cost_model"])

    cached = common.finished_result(run_dir, difference)
    if cached is not None:
        return cached, tables
    weights, theta = search_batches(data, config)
    print(f"dmasking search: {weights.num_images} weight / {theta.num_images} theta images",
          flush=True)
    result = run_dmasking(space, cost_model, weights, theta, config, run_dir=run_dir,
                          resume=common.resumable(run_dir))
    return result, tables


def derived_network(result: SearchResult, tables: ShapeCostTables,
                    budget: common.DnasSettings) -> ArchSpec:
    """The network the experiment trains: the most probable one within the target (within
    [0.95 T, T] for the two-sided form), recomputed from the saved ``P_theta`` so that every
    cached result gets the same rule; the argmax where nothing fits."""
    target = result.target_latency
    derived = derive_within_target(tables.space, np.array(result.probabilities), tables, target,
                                   DMaskingCost(tables),
                                   lower=lower_bound(target, budget.dnas.target_form))
    return ArchSpec.from_string((derived or result.argmax).arch)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cost", choices=("lut", "flops"), default="lut",
                        help="search cost: this CPU's ORT LUT of the space (default) or FLOPs")
    parser.add_argument("--no-fbnet-dnas", action="store_true",
                        help="leave out the FBNet DNAS comparison (its LUT and search)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    arguments, budget, work = common.dnas_arguments(__doc__.split("\n\n")[0], NAME, argv,
                                                    options)
    sections, _ = common.preset_mappings(NAME, quick=arguments.quick, path=arguments.config)
    loaded, _ = common.load_preset(NAME, {"lut_build": LutBuildConfig}, quick=arguments.quick,
                                   path=arguments.config)
    own, lut_config = sections["dmasking"], loaded["lut_build"]
    started = time.perf_counter()
    data = common.load_data()
    widths = budget.benchmark.mobilenet_widths
    archs, accuracy = common.trained_mobilenets(data, budget, work)
    table = None
    if arguments.cost == "flops":
        cost_model: CostModel = FlopsCost()
    else:
        table = common.measured_table(lut_config, work / f"lut-{SPACE}-{lut_config.engine}-"
                                                         f"{lut_config.threads}t.json")
        cost_model = table
    result, tables = search(cost_model, data, budget, own, work)
    searched_name = f"dmasking-{arguments.cost}-within-target"
    archs[searched_name] = derived_network(result, tables, budget)
    accuracy[searched_name] = common.train_network(searched_name, archs[searched_name], data,
                                                  budget, work)["final_top1"]
    if not arguments.no_fbnet_dnas:
        fbnet_table = common.local_lut(budget, work)
        fbnet_result = common.search("local", fbnet_table, data, budget, work)
        archs["searched-local"] = common.derived_network(fbnet_result, fbnet_table, budget)
        accuracy["searched-local"] = common.train_network(
            "searched-local", archs["searched-local"], data, budget, work)["final_top1"]
    output: dict[str, Any] = {
        "settings": {**budget.to_dict(), NAME: {"lut_build": settings.to_dict(lut_config),
                                                "dmasking": own}},
        "machine": common.machine(), "accuracy": accuracy,
        "search": {"space": SPACE, "cost": tables.name, "cost_unit": tables.unit,
                   "cost_mode": tables.mode, "lut_keys": len(space_keys(get_space(SPACE))),
                   "expected_cost": result.expected_cost,
                   "target": reference_target(tables, budget),
                   "argmax": {"arch": result.argmax.arch, "predicted_cost": result.argmax.cost}}}
    if not arguments.skip_latency:
        latency = common.measured_latency(archs, table, budget, work,
                                          f"latency-dmasking-{arguments.cost}.json")
        searched = {"arch": archs[searched_name].to_string(),
                    "resolution": archs[searched_name].resolution,
                    "latency_ms": latency["ms"][searched_name],
                    "predicted_cost": DMaskingCost(tables).cost(archs[searched_name]),
                    "predicted_unit": tables.unit, "top1": accuracy[searched_name]}
        baseline = [{"width": width, "latency_ms": latency["ms"][common.mobilenet_name(width)],
                     "top1": accuracy[common.mobilenet_name(width)]} for width in widths]
        fbnet = None if arguments.no_fbnet_dnas else {
            "arch": archs["searched-local"].to_string(),
            "latency_ms": latency["ms"]["searched-local"], "top1": accuracy["searched-local"]}
        output.update(searched=[searched], mobilenet_v2=baseline, fbnet_dnas=fbnet,
                      engine=latency["engine"],
                      comparison=common.interpolate_baseline(baseline, searched["latency_ms"],
                                                             searched["top1"]))
        if fbnet is not None:
            output["comparison_with_fbnet_dnas"] = {
                "top1_difference_points": searched["top1"] - fbnet["top1"],
                "latency_ratio": searched["latency_ms"] / fbnet["latency_ms"]}
        points = [(f"DMaskingNAS ({searched['resolution']} px)", searched)]
        points += [("FBNet DNAS", fbnet)] if fbnet is not None else []
        common.plot_against_baseline(points, baseline, common.output_path(
            arguments.out, NAME, arguments.quick, ".png"))
    return common.write_output(arguments.out, NAME, arguments.quick, output, started)


if __name__ == "__main__":
    common.run(main)
