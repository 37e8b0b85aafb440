"""Does ``dnas_quality``'s result survive other training seeds?

``dnas_quality`` trains each network once (recipe seed 0). This benchmark trains the networks
around the searched one's latency again with other recipe seeds (initialisation, augmentation
and batch order; the same 5,000 training and 5,000 test images): the network searched for this
CPU (most probable within [0.95 T, T]), the no-search control of the same space and latency, and
MobileNetV2 x0.75 and x1.0, whose latencies bracket theirs. Latencies are ``dnas_quality``'s
measurements (its work-folder cache). For every seed, the searched network and the control are
compared with MobileNetV2 interpolated at their latency from the *same seed's* trainings.
Writes ``benchmarks/results/dnas_quality_seeds.json``::

    {"top1": {network: {seed: top1}}, "mean": {...}, "std": {...},
     "gain_points": {network: {seed: points over MobileNetV2}}, ...}

Run after ``dnas_quality`` (about 10 minutes per training with 2 threads; resumable)::

    python -m benchmarks.dnas_quality_seeds                # seeds 0 (cached), 1, 2
    python -m benchmarks.dnas_quality_seeds --seeds 0 1 2 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import dnas_common as common
from benchmarks.dnas_quality import interpolate_baseline, random_at_target
from hwnas.arch.spec import ArchSpec
from hwnas.arch.zoo import mobilenet_v2_cifar
from hwnas.data.cifar import CifarArrays

BASELINE_WIDTHS = (0.75, 1.0)
SEARCHED = ("searched-local", "random-local")


def networks(data: CifarArrays, budget: common.Budget) -> dict[str, ArchSpec]:
    """The networks of ``dnas_quality`` that this benchmark retrains, by its names."""
    work = common.WORK
    table = common.local_lut(work)
    result = common.search("local", table, data, budget, work)
    archs = {name: arch for name, arch in (
        ("searched-local", common.derived_network(result, table, budget)),
        ("random-local", random_at_target(table, result.target_latency, budget)))}
    archs.update({f"mobilenet_v2_cifar-{w}": mobilenet_v2_cifar(width_multiplier=w)
                  for w in BASELINE_WIDTHS})
    return archs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    budget, work = common.Budget(), common.WORK
    common.check_work_budget(work, budget)
    started = time.perf_counter()
    data = common.load_data()
    archs = networks(data, budget)
    top1: dict[str, dict[int, float]] = {name: {} for name in archs}
    for seed in args.seeds:  # seed by seed, so an interrupted run has whole seeds
        for name, arch in archs.items():
            top1[name][seed] = common.train_network(name, arch, data, budget, work,
                                                    recipe_seed=seed)["final_top1"]
    latency = common.measured_latency(archs, work, "latency-dnas-quality.json")["ms"]
    gains: dict[str, dict[int, float]] = {name: {} for name in SEARCHED}
    for seed in args.seeds:
        baseline = [{"width": w, "latency_ms": latency[f"mobilenet_v2_cifar-{w}"],
                     "top1": top1[f"mobilenet_v2_cifar-{w}"][seed]} for w in BASELINE_WIDTHS]
        for name in SEARCHED:
            gains[name][seed] = interpolate_baseline(
                baseline, latency[name], top1[name][seed])["accuracy_gain_points"]
    output = {
        "budget": budget.to_dict(), "machine": common.machine(), "seeds": args.seeds,
        "latency_ms": {name: latency[name] for name in archs}, "top1": top1,
        "mean": {name: float(np.mean(list(rows.values()))) for name, rows in top1.items()},
        "std": {name: float(np.std(list(rows.values()), ddof=1)) if len(rows) > 1 else None
                for name, rows in top1.items()},
        "gain_points": gains,
        "mean_gain_points": {name: float(np.mean(list(rows.values())))
                             for name, rows in gains.items()},
        "search_minus_control_points": {
            seed: top1["searched-local"][seed] - top1["random-local"][seed]
            for seed in args.seeds},
    }
    for name in archs:
        print(f"{name:26s} {output['mean'][name]:.2f} +- {output['std'][name] or 0:.2f} "
              f"{top1[name]}")
    return common.write_output(Path("benchmarks/results"), "dnas_quality_seeds", False,
                               output, started)


if __name__ == "__main__":
    main()
