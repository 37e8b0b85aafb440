"""Does the network FBNet finds for this CPU beat MobileNetV2 here? (FBNet, Wu et al. 2019:
MobileNetV2's accuracy at 1.5x lower latency on the Samsung S8.)

The search with this CPU's ONNX Runtime LUT (the "local" search of ``dnas_devices``, shared
through the work folder) gives two networks, both trained: the most probable one within
[0.95 T, T] of its latency target (what ``dnas_devices`` trains) and the per-layer argmax. A
control without search, a random network of the same space within [0.95 T, T], tells what the
search adds to the space. They and MobileNetV2 (CIFAR strides) at several width multipliers are
trained with one identical short recipe on CIFAR-10 and timed end to end with ONNX Runtime
(1 thread, batch 1). Writes
``benchmarks/results/dnas_quality.json``::

    {"searched": [{"derivation", "arch", "latency_ms", "predicted_ms", "top1", "comparison"}],
     "mobilenet_v2": [{"width", "latency_ms", "top1"}], ...}

and ``dnas_quality.png`` (accuracy against latency). Target: MobileNetV2's accuracy at >= 1.3x
lower latency, or >= 1 point higher accuracy at equal latency. Run::

    python -m benchmarks.dnas_quality                 # about 20 min on 2 cores, resumable
    python -m benchmarks.dnas_quality --skip-latency  # compute only
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import dnas_common as common
from hwnas.arch.spec import ArchSpec
from hwnas.arch.zoo import mobilenet_v2_cifar
from hwnas.spaces import get_space

WIDTHS = (0.35, 0.5, 0.75, 1.0)


def interpolate_baseline(baseline: list[dict[str, Any]], latency_ms: float,
                         top1: float) -> dict[str, Any]:
    """MobileNetV2's accuracy at the searched latency and its latency at the searched accuracy,
    by linear interpolation along the width family (sorted by latency; None outside it)."""
    ordered = sorted(baseline, key=lambda row: row["latency_ms"])
    latencies = np.array([row["latency_ms"] for row in ordered])
    accuracies = np.array([row["top1"] for row in ordered])
    inside = latencies[0] <= latency_ms <= latencies[-1]
    accuracy_at_latency = float(np.interp(latency_ms, latencies, accuracies)) if inside else None
    best_so_far = np.maximum.accumulate(accuracies)
    reaching = np.flatnonzero(best_so_far >= top1)
    latency_at_accuracy = float(latencies[reaching[0]]) if len(reaching) else None
    return {
        "mobilenet_v2_top1_at_searched_latency": accuracy_at_latency,
        "accuracy_gain_points": None if accuracy_at_latency is None
        else top1 - accuracy_at_latency,
        "mobilenet_v2_latency_reaching_searched_top1": latency_at_accuracy,
        "speedup_at_equal_accuracy": None if latency_at_accuracy is None
        else latency_at_accuracy / latency_ms,
    }


def random_at_target(table: Any, target: float, budget: Any) -> ArchSpec:
    """The control: the first uniform random network of the space (transition layers fixed
    as in the search) whose predicted latency is within [0.95 T, T]. Same space, same latency,
    no search: what the search adds is the difference to it."""
    space = get_space(common.SPACE)
    fixed = common.fixed_transitions(budget)
    rng = np.random.default_rng(budget.seed)
    while True:
        choices = [space.candidates.index(fixed[layer]) if layer in fixed
                   else int(rng.integers(space.num_candidates))
                   for layer in range(space.num_layers)]
        arch = space.to_arch(choices)
        if 0.95 * target <= table.cost(arch) <= target:
            return arch


def plot(points: list[tuple[str, dict[str, Any]]], baseline: list[dict[str, Any]],
         path: Path) -> None:
    """Top-1 against measured latency: the MobileNetV2 width family as a line, each searched
    network (label, row with ``latency_ms`` and ``top1``) as a marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.5, 4))
    axes.plot([row["latency_ms"] for row in baseline], [row["top1"] for row in baseline], "o-",
              label="MobileNetV2 (CIFAR strides), widths " + "/".join(str(w) for w in WIDTHS))
    for index, (label, row) in enumerate(points):
        axes.scatter([row["latency_ms"]], [row["top1"]], marker="*D^"[index % 3],
                     s=160 if index == 0 else 60, color=f"C{index + 3}", label=label, zorder=3)
    axes.set_xlabel("latency, ms (ONNX Runtime, 1 thread, batch 1, this CPU)")
    axes.set_ylabel("CIFAR-10 top-1, % (identical short recipe)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args, budget, work = common.parse_arguments(__doc__.split("\n\n")[0], argv)
    started = time.perf_counter()
    data = common.load_data()
    archs: dict[str, ArchSpec] = {f"mobilenet_v2_cifar-{w}": mobilenet_v2_cifar(width_multiplier=w)
                                  for w in WIDTHS}
    accuracy = {name: common.train_network(name, arch, data, budget, work)["final_top1"]
                for name, arch in archs.items()}
    table = common.local_lut(work)
    result = common.search("local", table, data, budget, work)
    # Two readings of one search, both trained: the network the target asks for, and the
    # per-layer argmax (module docstring).
    derived = {"searched-local": ("most probable within [0.95 T, T]",
                                  common.derived_network(result, table, budget)),
               "searched-local-argmax": ("argmax", ArchSpec.from_string(result.argmax.arch)),
               "random-local": ("control: random network within [0.95 T, T], no search",
                                random_at_target(table, result.target_latency, budget))}
    for name, (_, arch) in derived.items():
        archs[name] = arch
        accuracy[name] = common.train_network(name, arch, data, budget, work)["final_top1"]
    output: dict[str, Any] = {"budget": budget.to_dict(), "machine": common.machine(),
                              "target_ms": result.target_latency, "accuracy": accuracy}
    if not args.skip_latency:
        latency = common.measured_latency(archs, work, "latency-dnas-quality.json")
        baseline = [{"width": w, "latency_ms": latency["ms"][f"mobilenet_v2_cifar-{w}"],
                     "top1": accuracy[f"mobilenet_v2_cifar-{w}"]} for w in WIDTHS]
        searched = []
        for name, (derivation, arch) in derived.items():
            row = {"derivation": derivation, "arch": arch.to_string(),
                   "latency_ms": latency["ms"][name], "predicted_ms": table.cost(arch),
                   "top1": accuracy[name]}
            comparison = interpolate_baseline(baseline, row["latency_ms"], row["top1"])
            row["comparison"] = comparison
            row["meets_target"] = bool(
                (comparison["speedup_at_equal_accuracy"] or 0) >= 1.3
                or (comparison["accuracy_gain_points"] or float("-inf")) >= 1.0)
            searched.append(row)
        output.update(searched=searched, mobilenet_v2=baseline, engine=latency["engine"])
        plot([(f"FBNet DNAS for this CPU: {row['derivation']}", row) for row in searched],
             baseline, args.out / ("dnas_quality_quick.png" if args.quick else "dnas_quality.png"))
    return common.write_output(args.out, "dnas_quality", args.quick, output, started)


if __name__ == "__main__":
    main()
