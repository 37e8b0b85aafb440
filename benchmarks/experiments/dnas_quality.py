"""Does the network FBNet finds for this CPU beat MobileNetV2 here? (FBNet, Wu et al. 2019:
MobileNetV2's accuracy at 1.5x lower latency on the Samsung S8.)

Method: the search with this CPU's ONNX Runtime LUT (the "local" search of ``dnas_devices``,
shared through the work folder, budget ``configs/benchmarks/dnas.yaml``) gives two networks, both
trained: the most probable one within [0.95 T, T] of its latency target (what ``dnas_devices``
trains) and the per-layer argmax. A control without search, the first random network of the same
space within [0.95 T, T] (:func:`common.random_at_target`), tells what the search adds to the
space. They and MobileNetV2 (CIFAR strides) at the preset's width multipliers are trained with
one identical recipe on CIFAR-10 and timed end to end with the LUT's engine (ONNX Runtime,
1 thread, batch 1). Writes ``benchmarks/results/dnas_quality.json``::

    {"searched": [{"derivation", "arch", "latency_ms", "predicted_ms", "top1", "comparison"}],
     "mobilenet_v2": [{"width", "latency_ms", "top1"}], ...}

and ``dnas_quality.png`` (accuracy against latency). Target (``configs/benchmarks/
dnas_quality.yaml``): MobileNetV2's accuracy at >= 1.3x lower latency, or >= 1 point higher
accuracy at equal latency. Run::

    python -m benchmarks.experiments.dnas_quality                 # resumable
    python -m benchmarks.experiments.dnas_quality --skip-latency  # compute only
    python -m benchmarks.experiments.dnas_quality --quick         # smoke run
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from benchmarks.experiments import common
from hwnas import settings
from hwnas.arch.spec import ArchSpec
from hwnas.settings import check

NAME = "dnas_quality"


@dataclass(frozen=True, kw_only=True)
class QualityConfig:
    """The ``benchmark`` section of ``configs/benchmarks/dnas_quality.yaml``."""

    target_speedup: float = common.required(
        "Target: MobileNetV2's accuracy at this much lower latency...", minimum=1)
    target_gain_points: float = common.required(
        "... or this many points more accuracy at equal latency.", minimum=0)

    def __post_init__(self) -> None:
        check(self)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    arguments, budget, work = common.dnas_arguments(__doc__.split("\n\n")[0], NAME, argv)
    loaded, _ = common.load_preset(NAME, {"benchmark": QualityConfig}, quick=arguments.quick,
                                   path=arguments.config)
    own = loaded["benchmark"]
    started = time.perf_counter()
    data = common.load_data()
    widths = budget.benchmark.mobilenet_widths
    archs, accuracy = common.trained_mobilenets(data, budget, work)
    table = common.local_lut(budget, work)
    result = common.search("local", table, data, budget, work)
    # Two readings of one search, both trained, and the control (module docstring).
    derived = {"searched-local": ("most probable within [0.95 T, T]",
                                  common.derived_network(result, table, budget)),
               "searched-local-argmax": ("argmax", ArchSpec.from_string(result.argmax.arch)),
               "random-local": ("control: random network within [0.95 T, T], no search",
                                common.random_at_target(table, result.target_latency, budget))}
    for name, (_, arch) in derived.items():
        archs[name] = arch
        accuracy[name] = common.train_network(name, arch, data, budget, work)["final_top1"]
    output: dict[str, Any] = {"settings": {**budget.to_dict(), NAME: settings.to_dict(own)},
                              "machine": common.machine(), "target_ms": result.target_latency,
                              "accuracy": accuracy}
    if not arguments.skip_latency:
        latency = common.measured_latency(archs, table, budget, work, "latency-dnas-quality.json")
        baseline = [{"width": width, "latency_ms": latency["ms"][common.mobilenet_name(width)],
                     "top1": accuracy[common.mobilenet_name(width)]} for width in widths]
        searched = []
        for name, (derivation, arch) in derived.items():
            row = {"derivation": derivation, "arch": arch.to_string(),
                   "latency_ms": latency["ms"][name], "predicted_ms": table.cost(arch),
                   "top1": accuracy[name]}
            comparison = common.interpolate_baseline(baseline, row["latency_ms"], row["top1"])
            row["comparison"] = comparison
            row["meets_target"] = bool(
                (comparison["speedup_at_equal_accuracy"] or 0) >= own.target_speedup
                or (comparison["accuracy_gain_points"] or float("-inf"))
                >= own.target_gain_points)
            searched.append(row)
        output.update(searched=searched, mobilenet_v2=baseline, engine=latency["engine"])
        common.plot_against_baseline(
            [(f"FBNet DNAS for this CPU: {row['derivation']}", row) for row in searched],
            baseline, common.output_path(arguments.out, NAME, arguments.quick, ".png"))
    return common.write_output(arguments.out, NAME, arguments.quick, output, started)


if __name__ == "__main__":
    common.run(main)
