"""Is the network searched for a device the fastest on that device? (FBNet, Wu et al. 2019: the
iPhone X network ran 1.4x faster on the iPhone X than the Samsung S8 network.)

Five FBNet DNAS searches on the same CIFAR-10 data and budget, one per cost model: the
HW-NAS-Bench FBNet tables of raspi4, pixel3, eyeriss and fpga, and this CPU's measured ONNX
Runtime LUT ("local"). All start from one shared weight warm-up of the supernet; each then
alternates weight and theta epochs with alpha 0.2, beta 0.6 and the two-sided target T = the
device's cost of the all-k3_e3 network (``dnas_common.Budget`` says why each setting). The most
probable network within T is priced on every device (the four tables; "local" is measured end
to end here, not predicted) and trained with one identical short recipe. Writes
``benchmarks/results/dnas_devices.json``::

    {"latency_ms": {searched_for: {run_on: ms}}, "accuracy": {searched_for: top1}, ...}

Targets: each device's network is the fastest of the five on its own device, accuracies within
one point of each other. Run::

    python -m benchmarks.dnas_devices                 # about 30 min on 2 cores, resumable
    python -m benchmarks.dnas_devices --skip-latency  # compute only; time latency later, alone
    python -m benchmarks.dnas_devices --quick         # smoke run

Variants (their own searches, trainings and ``dnas_devices<suffix>.json``, e.g.
``dnas_devices-capacity-k5_e3-nested.json``): ``--capacity-level k5_e3`` gives every device the
capacity-matched target of ``dnas_devices_bound`` instead of the all-k3_e3 network's cost;
``--weight-sharing nested`` searches the shared-weight supernet (``hwnas.dnas.nested``) from its
own warm-up::

    python -m benchmarks.dnas_devices --weight-sharing nested --capacity-level k5_e3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from benchmarks import dnas_common as common
from hwnas.arch.spec import ArchSpec
from hwnas.cost.device_table import DEVICE_NAMES, load_device_table

DEVICES = ("local",) + DEVICE_NAMES


def cost_models(work: Path) -> dict[str, Any]:
    models: dict[str, Any] = {"local": common.local_lut(work)}
    for name in DEVICE_NAMES:
        # The tables price the 100-class network; a 10-class search differs only by the FC,
        # a constant that does not change which network is faster (HW-NAS-Bench issue #10).
        models[name] = load_device_table(name, allow_num_classes_mismatch=True)
    return models


def summary(latency: dict[str, dict[str, float]], accuracy: dict[str, float]) -> dict[str, Any]:
    fastest_on_own = {
        device: min(latency, key=lambda searched: latency[searched][device]) == device
        for device in DEVICES
    }
    speedups = {
        device: {other: latency[other][device] / latency[device][device]
                 for other in DEVICES if other != device}
        for device in DEVICES
    }
    spread = max(accuracy.values()) - min(accuracy.values()) if accuracy else None
    return {"fastest_on_own_device": fastest_on_own,
            "all_fastest_on_own_device": all(fastest_on_own.values()),
            "speedup_of_own_network_vs_others": speedups,
            "accuracy_spread_points": spread,
            "accuracy_within_1_point": spread is not None and spread <= 1.0}


def variant_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weight-sharing", choices=("independent", "nested"),
                        default="independent", help="the supernet's (hwnas.dnas.nested)")
    parser.add_argument("--capacity-level", choices=("k3_e1", "k3_e3", "k5_e3", "k3_e6"),
                        help="capacity-matched targets at this candidate's MFLOPs "
                             "(dnas_common.capacity_matched_target)")
    parser.add_argument("--residual-scale", type=float, default=0.0,
                        help="initial last-BN scale of the searched residual blocks")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args, budget, work = common.parse_arguments(__doc__.split("\n\n")[0], argv,
                                                variant_options)
    variant = {"capacity_level": args.capacity_level, "weight_sharing": args.weight_sharing,
               "residual_scale": args.residual_scale}
    suffix = common.variant_suffix(**variant)
    started = time.perf_counter()
    models = cost_models(work)
    data = common.load_data()
    searched: dict[str, ArchSpec] = {}
    targets: dict[str, float] = {}
    for device in DEVICES:
        result = common.search(device, models[device], data, budget, work, **variant)
        searched[device] = common.derived_network(result, models[device], budget)
        targets[device] = result.target_latency
    accuracy = {device: common.train_network(f"searched-{device}{suffix}", arch, data, budget,
                                             work)["final_top1"]
                for device, arch in searched.items()}
    output: dict[str, Any] = {
        "budget": budget.to_dict(), "machine": common.machine(), "variant": variant,
        "targets": targets,
        "archs": {device: arch.to_string() for device, arch in searched.items()},
        "accuracy": accuracy,
        "predicted_local_ms": {device: models["local"].cost(arch)
                               for device, arch in searched.items()},
    }
    if not args.skip_latency:
        local = common.measured_latency(searched, work, f"latency-dnas-devices{suffix}.json")
        output["latency_ms"] = {
            device: {run_on: (local["ms"][device] if run_on == "local"
                              else models[run_on].cost(arch)) for run_on in DEVICES}
            for device, arch in searched.items()
        }
        output["local_engine"] = local["engine"]
        output["summary"] = summary(output["latency_ms"], accuracy)
    return common.write_output(args.out, f"dnas_devices{suffix}", args.quick, output, started)


if __name__ == "__main__":
    main()
