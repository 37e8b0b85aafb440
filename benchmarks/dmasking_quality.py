"""Does the network DMaskingNAS (FBNetV2) finds for this CPU beat MobileNetV2 and FBNet DNAS?

Same protocol as ``benchmarks/dnas_quality.py`` (and its shared, resumable work folder,
``benchmarks/dnas_common.py``): one identical search budget and one identical training recipe
on CIFAR-10 for every network, latency timed end to end with ONNX Runtime (1 thread, batch 1) in
one interleaved session. The DMasking search:

* space ``dmasking-cifar`` (FBNet CIFAR stages, 2-3 widths per stage, 24/28/32 px, 6 blocks);
* cost: this CPU's ONNX Runtime LUT of the space (``hwnas lut build --space dmasking-cifar``,
  built here once, resumably; uncalibrated, since its calibration networks would span three
  resolutions), effective-shape cost (:mod:`hwnas.dnas.dmasking_cost`);
* loss: the target form of the FBNet DNAS benchmark (``Budget.target_form``, two-sided) with
  T = the cost of the full-width, 32 px network with k3_e3 at every layer, the rule the FBNet
  DNAS benchmark uses (``dnas_common.reference_target``); its weight-only epochs, search epochs
  and learning rates are the FBNet searches' (no shared warm-up: another supernet); the first
  layer of every stage keeps k3_e6, as the FBNet searches' transition layers do (widths and
  resolution stay searched there).

The network trained is the most probable one within the target (within [0.95 T, T], as for the
FBNet searches: ``hwnas.dnas.dmasking_derive``); the argmax is reported beside it. It runs at its
chosen resolution, so it is trained and tested on CIFAR-10
resized to that resolution (bilinear, antialiased: ``hwnas.dnas.masking.resize_image_arrays``) and
timed at it. Writes ``benchmarks/results/dmasking_quality.json``::

    {"searched": [{"arch", "resolution", "latency_ms", "predicted_cost", "top1"}],
     "mobilenet_v2": [{"width", "latency_ms", "top1"}], "fbnet_dnas": {...},
     "comparison": {...}, "comparison_with_fbnet_dnas": {...}, ...}

and ``dmasking_quality.png``. Run (MobileNetV2 trainings and the FBNet DNAS search are shared
with ``dnas_quality``, so running that first saves their time)::

    python -m benchmarks.dmasking_quality                  # ~12 min after dnas_quality, ~30 alone
    python -m benchmarks.dmasking_quality --skip-latency   # compute only
    python -m benchmarks.dmasking_quality --quick --cost flops --no-fbnet-dnas   # smoke test
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import dnas_common as common
from benchmarks.dnas_quality import WIDTHS, interpolate_baseline, plot
from hwnas.arch.spec import ArchSpec
from hwnas.arch.zoo import mobilenet_v2_cifar
from hwnas.cost.base import CostModel
from hwnas.cost.engines import TimingSettings, make_engine
from hwnas.cost.flops import FlopsCost
from hwnas.cost.lutbuild import LAYER_TIMING, build_lut
from hwnas.cost.opkey import space_keys
from hwnas.data.cifar import CifarArrays
from hwnas.dnas.data import search_batches
from hwnas.dnas.dmasking_cost import DMaskingCost, ShapeCostTables
from hwnas.dnas.dmasking_derive import derive_within_target
from hwnas.dnas.dmasking_search import run_dmasking
from hwnas.dnas.result import SearchResult, lower_bound
from hwnas.spaces import get_space

SPACE = "dmasking-cifar"
QUICK_LAYER_TIMING = TimingSettings(warmup=1, repeats=3, rounds=1)


def dmasking_cost(kind: str, work: Path, quick: bool) -> CostModel:
    if kind == "flops":
        return FlopsCost()
    # No calibration: its networks would span three resolutions, which a LatencyTable's
    # end-to-end check refuses; the search and the budget use the same raw LUT sums.
    return build_lut(SPACE, make_engine("ort", threads=1), work / f"lut-{SPACE}-ort-1t.json",
                     timing=QUICK_LAYER_TIMING if quick else LAYER_TIMING,
                     calibration_networks=0)


def reference_target(tables: ShapeCostTables, budget: common.Budget) -> float:
    """T: the cost of the full-width 32 px network with the reference block at every layer."""
    space = tables.space
    choices = list(space.largest_choices())
    for layer in space.layers:
        choices[1 + space.num_stages + layer.index] = layer.candidates.index(
            budget.reference_candidate)
    return tables.cost_of_choices(tuple(choices))


def search(cost_model: CostModel, data: CifarArrays, budget: common.Budget,
           work: Path) -> tuple[SearchResult, ShapeCostTables]:
    space = get_space(SPACE)
    tables = ShapeCostTables(space, cost_model)
    run_dir = work / f"search-dmasking-{cost_model.name.replace(' ', '_')}"
    if (run_dir / "result.json").exists():
        return SearchResult.load(run_dir / "result.json"), tables
    torch.set_num_threads(budget.threads)
    weights, theta = search_batches(data, per_class=budget.search_per_class,
                                    batch_size=budget.batch_size, seed=budget.seed)
    print(f"dmasking search: {weights.num_images} weight / {theta.num_images} theta images",
          flush=True)
    # Its supernet is not the FBNet one, so no shared warm-up: the same number of weight-only
    # epochs, then the same search epochs, with the FBNet searches' rates and target form.
    result = run_dmasking(space, cost_model, weights, theta,
                          epochs=budget.warmup_epochs + budget.search_epochs,
                          warmup_epochs=budget.warmup_epochs, weight_lr=common.WEIGHT_LR,
                          theta_lr=budget.theta_lr, seed=budget.seed,
                          target_latency=reference_target(tables, budget),
                          target_form=budget.target_form,
                          fixed_layers={layer.index: budget.transition_candidate
                                        for layer in space.layers if layer.first},
                          run_dir=run_dir,
                          resume=run_dir.exists(), num_samples=8,
                          checkpoint_every=max(1, len(weights) // 2))
    return result, tables


def derived_network(result: SearchResult, tables: ShapeCostTables,
                    budget: common.Budget) -> ArchSpec:
    """The network the benchmark trains: the most probable one within the target (within
    [0.95 T, T] for the two-sided form; ``hwnas.dnas.dmasking_derive``), recomputed from the
    saved ``P_theta`` so that a result saved by earlier code gets the same rule; the argmax
    where nothing fits."""
    target = result.target_latency
    derived = derive_within_target(tables.space, np.array(result.probabilities), tables, target,
                                   DMaskingCost(tables),
                                   lower=lower_bound(target, budget.target_form))
    return ArchSpec.from_string((derived or result.argmax).arch)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--cost", choices=("lut", "flops"), default="lut",
                        help="search cost: this CPU's ORT LUT of the space (default) or FLOPs")
    parser.add_argument("--no-fbnet-dnas", action="store_true",
                        help="leave out the FBNet DNAS comparison (its LUT and search)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    budget = common.Budget.quick() if args.quick else common.Budget()
    work = common.WORK.with_name(common.WORK.name + ("_quick" if args.quick else ""))
    started = time.perf_counter()
    data = common.load_data()
    archs: dict[str, ArchSpec] = {f"mobilenet_v2_cifar-{w}": mobilenet_v2_cifar(width_multiplier=w)
                                  for w in WIDTHS}
    accuracy = {name: common.train_network(name, arch, data, budget, work)["final_top1"]
                for name, arch in archs.items()}
    cost_model = dmasking_cost(args.cost, work, args.quick)
    result, tables = search(cost_model, data, budget, work)
    searched_name = f"dmasking-{args.cost}-within-target"
    archs[searched_name] = derived_network(result, tables, budget)
    accuracy[searched_name] = common.train_network(searched_name, archs[searched_name], data,
                                                  budget, work)["final_top1"]
    if not args.no_fbnet_dnas:
        table = common.local_lut(work)
        fbnet_result = common.search("local", table, data, budget, work)
        archs["searched-local"] = common.derived_network(fbnet_result, table, budget)
        accuracy["searched-local"] = common.train_network(
            "searched-local", archs["searched-local"], data, budget, work)["final_top1"]
    output: dict[str, Any] = {
        "budget": budget.to_dict(), "machine": common.machine(), "accuracy": accuracy,
        "search": {"space": SPACE, "cost": tables.name, "cost_unit": tables.unit,
                   "cost_mode": tables.mode, "lut_keys": len(space_keys(get_space(SPACE))),
                   "expected_cost": result.expected_cost,
                   "target": reference_target(tables, budget),
                   "argmax": {"arch": result.argmax.arch, "predicted_cost": result.argmax.cost}}}
    if not args.skip_latency:
        latency = common.measured_latency(archs, work, f"latency-dmasking-{args.cost}.json")
        searched = {"arch": archs[searched_name].to_string(),
                    "resolution": archs[searched_name].resolution,
                    "latency_ms": latency["ms"][searched_name],
                    "predicted_cost": DMaskingCost(tables).cost(archs[searched_name]),
                    "predicted_unit": tables.unit,
                    "top1": accuracy[searched_name]}
        baseline = [{"width": w, "latency_ms": latency["ms"][f"mobilenet_v2_cifar-{w}"],
                     "top1": accuracy[f"mobilenet_v2_cifar-{w}"]} for w in WIDTHS]
        fbnet = None if args.no_fbnet_dnas else {
            "arch": archs["searched-local"].to_string(),
            "latency_ms": latency["ms"]["searched-local"], "top1": accuracy["searched-local"]}
        output.update(searched=[searched], mobilenet_v2=baseline, fbnet_dnas=fbnet,
                      engine=latency["engine"],
                      comparison=interpolate_baseline(baseline, searched["latency_ms"],
                                                      searched["top1"]))
        if fbnet is not None:
            output["comparison_with_fbnet_dnas"] = {
                "top1_difference_points": searched["top1"] - fbnet["top1"],
                "latency_ratio": searched["latency_ms"] / fbnet["latency_ms"]}
        points = [(f"DMaskingNAS ({searched['resolution']} px)", searched)]
        points += [("FBNet DNAS", fbnet)] if fbnet is not None else []
        plot(points, baseline,
             args.out / ("dmasking_quality_quick.png" if args.quick else "dmasking_quality.png"))
    return common.write_output(args.out, "dmasking_quality", args.quick, output, started)


if __name__ == "__main__":
    main()
