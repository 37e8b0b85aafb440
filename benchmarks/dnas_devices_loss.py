"""Which loss makes the FBNet searches device-specific? Predicted latencies only.

``dnas_devices`` missed its first target: with the two-sided target loss only the raspi4 network
was the fastest of the five on its own device. This benchmark asks whether FBNet's own loss,
``CE * alpha * log(1 + E[LAT]) ** beta`` with no target (``hwnas.dnas.loss``), which keeps
pushing every layer towards the candidates that are cheap *on the searched device*, does better.
Every search starts from the same shared warm-up and uses the same data, budget, estimator
(REINFORCE) and fixed transition layers as ``dnas_devices``; only the loss differs. A third
variant keeps the two-sided loss but gives every device the same capacity: its target is the
smallest cost on that device of any network with the all-k5_e3 network's MFLOPs
(``dnas_common.capacity_matched_target``), the rule under which an exact search with MFLOPs as
its accuracy signal makes every device's network the fastest on its own device
(``dnas_devices_bound``). Each search's
networks are derived two ways: its argmax (the paper's) and the most probable network within
``[0.95 T, T]`` of the search's target T (the network ``dnas_devices`` trains; for the
no-target searches, the device's reference target). Every network is
priced on all five cost models (the four device tables and this CPU's LUT, predicted: no
training, no timing), beside the same matrix for the ``dnas_devices`` searches. Writes
``benchmarks/results/dnas_devices_loss.json``::

    {"<loss>": {"<derivation>": {"cost": {searched_for: {run_on: ms}},
                                 "fastest_on_own_device": {device: bool}, "archs": {...}}}}

Run (ten searches of about 7 minutes each with the budget's 2 threads, after ``dnas_devices``'s
warm-up and five searches)::

    python -m benchmarks.dnas_devices_loss
"""

from __future__ import annotations

import time
from typing import Any


from benchmarks import dnas_common as common
from benchmarks.dnas_devices import DEVICES, cost_models
from hwnas.arch.spec import ArchSpec

#: the capacity level of the third variant: where an exact search with MFLOPs as its accuracy
#: signal makes every device's network the fastest on its own device (``dnas_devices_bound``)
CAPACITY_LEVEL = "k5_e3"


def priced(archs: dict[str, ArchSpec], models: dict[str, Any]) -> dict[str, Any]:
    cost = {searched: {run_on: models[run_on].cost(arch) for run_on in DEVICES}
            for searched, arch in archs.items()}
    fastest = {device: min(cost, key=lambda searched: cost[searched][device]) == device
               for device in DEVICES}
    return {"cost": cost, "fastest_on_own_device": fastest,
            "archs": {name: arch.to_string() for name, arch in archs.items()},
            "skips": {name: arch.to_string().count("skip_") for name, arch in archs.items()}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args, budget, work = common.parse_arguments(__doc__.split("\n\n")[0], argv)
    started = time.perf_counter()
    models = cost_models(work)
    data = common.load_data()
    searches = {
        "two_sided_target": {device: common.search(device, models[device], data, budget, work)
                             for device in DEVICES},
        "fbnet_no_target": {device: common.search(device, models[device], data, budget, work,
                                                  fbnet_loss=True)
                            for device in DEVICES},
        "capacity_matched_target": {
            device: common.search(device, models[device], data, budget, work,
                                  capacity_level=CAPACITY_LEVEL)
            for device in DEVICES},
    }
    output: dict[str, Any] = {"budget": budget.to_dict(), "machine": common.machine(),
                              "targets": {device: common.reference_target(models[device], budget)
                                          for device in DEVICES},
                              "capacity_matched_targets": {
                                  device: searches["capacity_matched_target"][device].target_latency
                                  for device in DEVICES}}
    for loss, results in searches.items():
        output[loss] = {
            "argmax": priced({d: ArchSpec.from_string(r.argmax.arch)
                              for d, r in results.items()}, models),
            "within_target": priced({d: common.derived_network(r, models[d], budget)
                                     for d, r in results.items()}, models),
            "expected_cost": {d: r.expected_cost for d, r in results.items()},
        }
    for loss in searches:
        for derivation in ("argmax", "within_target"):
            hits = output[loss][derivation]["fastest_on_own_device"]
            print(f"{loss:23s} {derivation:13s} fastest on own device: "
                  f"{sum(hits.values())}/5 {[d for d, hit in hits.items() if hit]}")
    return common.write_output(args.out, "dnas_devices_loss", args.quick, output, started)


if __name__ == "__main__":
    main()
