"""Does ``dnas_quality``'s result survive other training seeds?

Method: ``dnas_quality`` trains each network once (the preset recipe's seed). This experiment
trains the networks around the searched one's latency again with the recipe seeds of
``configs/benchmarks/dnas_quality_seeds.yaml`` (initialisation, augmentation and batch order; the
same training and test images, :func:`common.training_data`): the network searched for this CPU
(most probable within [0.95 T, T]), the no-search control of the same space and latency, and
the MobileNetV2 widths whose latencies bracket theirs. Latencies are ``dnas_quality``'s
measurements (its work-folder cache). For every seed, the searched network and the control are
compared with MobileNetV2 interpolated at their latency from the *same seed's* trainings.
Writes ``benchmarks/results/dnas_quality_seeds.json``::

    {"top1": {network: {seed: top1}}, "mean": {...}, "std": {...},
     "gain_points": {network: {seed: points over MobileNetV2}}, ...}

Run after ``dnas_quality`` (resumable, seed by seed)::

    python -m benchmarks.experiments.dnas_quality_seeds
    python -m benchmarks.experiments.dnas_quality_seeds --quick   # smoke run
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.experiments import common
from hwnas import settings
from hwnas.arch.spec import ArchSpec
from hwnas.arch.zoo import mobilenet_v2_cifar
from hwnas.data.cifar import CifarArrays
from hwnas.settings import check

NAME = "dnas_quality_seeds"
SEARCHED = ("searched-local", "random-local")


@dataclass(frozen=True, kw_only=True)
class SeedsConfig:
    """The ``benchmark`` section of ``configs/benchmarks/dnas_quality_seeds.yaml``."""

    seeds: tuple[int, ...] = common.required("Recipe seeds of the trainings.")
    baseline_widths: tuple[float, ...] = common.required(
        "MobileNetV2 widths that bracket the searched network's latency.")

    def __post_init__(self) -> None:
        check(self)


def networks(data: CifarArrays, budget: common.DnasSettings, own: SeedsConfig, work: Any,
             table: Any) -> dict[str, ArchSpec]:
    """The networks of ``dnas_quality`` that this experiment retrains, by its names."""
    result = common.search("local", table, data, budget, work)
    archs = {"searched-local": common.derived_network(result, table, budget),
             "random-local": common.random_at_target(table, result.target_latency, budget)}
    archs.update({common.mobilenet_name(width): mobilenet_v2_cifar(width_multiplier=width)
                  for width in own.baseline_widths})
    return archs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    arguments, budget, work = common.dnas_arguments(__doc__.split("\n\n")[0], NAME, argv)
    loaded, _ = common.load_preset(NAME, {"benchmark": SeedsConfig}, quick=arguments.quick,
                                   path=arguments.config)
    own = loaded["benchmark"]
    started = time.perf_counter()
    data = common.load_data()
    table = common.local_lut(budget, work)
    archs = networks(data, budget, own, work, table)
    top1: dict[str, dict[int, float]] = {name: {} for name in archs}
    for seed in own.seeds:  # seed by seed, so an interrupted run has whole seeds
        for name, arch in archs.items():
            top1[name][seed] = common.train_network(name, arch, data, budget, work,
                                                    seed=seed)["final_top1"]
    latency = common.measured_latency(archs, table, budget, work,
                                      "latency-dnas-quality.json")["ms"]
    gains: dict[str, dict[int, float]] = {name: {} for name in SEARCHED}
    for seed in own.seeds:
        baseline = [{"width": width, "latency_ms": latency[common.mobilenet_name(width)],
                     "top1": top1[common.mobilenet_name(width)][seed]}
                    for width in own.baseline_widths]
        for name in SEARCHED:
            gains[name][seed] = common.interpolate_baseline(
                baseline, latency[name], top1[name][seed])["accuracy_gain_points"]
    output = {
        "settings": {**budget.to_dict(), NAME: settings.to_dict(own)},
        "machine": common.machine(), "seeds": list(own.seeds),
        "latency_ms": {name: latency[name] for name in archs}, "top1": top1,
        "mean": {name: float(np.mean(list(rows.values()))) for name, rows in top1.items()},
        "std": {name: float(np.std(list(rows.values()), ddof=1)) if len(rows) > 1 else None
                for name, rows in top1.items()},
        "gain_points": gains,
        "mean_gain_points": {name: float(np.mean(list(rows.values())))
                             for name, rows in gains.items()},
        "search_minus_control_points": {
            seed: top1["searched-local"][seed] - top1["random-local"][seed]
            for seed in own.seeds},
    }
    for name in archs:
        print(f"{name:26s} {output['mean'][name]:.2f} +- {output['std'][name] or 0:.2f} "
              f"{top1[name]}")
    return common.write_output(arguments.out, NAME, arguments.quick, output, started)


if __name__ == "__main__":
    common.run(main)
