"""How many devices could win with a perfect accuracy signal? A bound for ``dnas_devices``.

``dnas_devices`` asks each device's searched network to be the fastest of the five on its own
device, every search targeting ``[0.95 T_d, T_d]`` with ``T_d`` the device's cost of the all-k3_e3
network. This benchmark replaces the search's accuracy signal by an exact optimum of a
device-independent capacity proxy: for each device, the network with the most MFLOPs (or
parameters) whose predicted cost is within the same band, found exactly by the knapsack of
``hwnas.dnas.result.most_probable_within`` with the proxy in place of log-probabilities. Every
network is priced on all five cost models (the four HW-NAS-Bench tables and this CPU's ORT LUT;
predicted, no training, no timing), as in ``dnas_devices_loss``. If accuracy followed the proxy,
this is what a search that found the most accurate network within each target would deliver.

A second target rule is priced beside it, "capacity-matched": ``T_d`` = the smallest cost on
device d of any network with at least the MFLOPs of the all-<candidate> network (bisection over
T with the same knapsack; four capacity levels). The MFLOPs-maximal network within that T is
then the fastest network on d among all networks of at least that capacity, so every device wins
on its own by construction, up to ties; what the rule measures is how different the devices'
best networks of equal MFLOPs are at all.

Writes ``benchmarks/results/dnas_devices_bound.json``. Run (seconds; builds this CPU's LUT first
if the work folder has none, about 5 minutes)::

    python -m benchmarks.dnas_devices_bound
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks import dnas_common as common
from benchmarks.dnas_devices import DEVICES, cost_models, summary
from hwnas.cost.flops import FlopsCost, ParamsCost
from hwnas.dnas.result import lower_bound
from hwnas.spaces import get_space

PROXIES = {"mflops": FlopsCost(), "mparams": ParamsCost()}
#: capacity levels of the capacity-matched rule: the MFLOPs of each all-<candidate> network
CAPACITY_LEVELS = ("k3_e1", "k3_e3", "k5_e3", "k3_e6")
#: costs within 0.5 % count as a tie: the tables' own precision is coarser
TIE = 1.005


def priced(networks: dict[str, Any], models: dict[str, Any], proxy: Any) -> dict[str, Any]:
    cost = {searched: {run_on: models[run_on].cost(arch) for run_on in DEVICES}
            for searched, arch in networks.items()}
    result = summary(cost, {})
    return {"cost": cost,
            "fastest_or_tied_on_own_device": {
                device: cost[device][device] <= TIE * min(cost[other][device] for other in DEVICES
                                                          if other != device)
                for device in DEVICES},
            "proxy_value": {device: proxy.cost(arch) for device, arch in networks.items()},
            "fastest_on_own_device": result["fastest_on_own_device"],
            "speedup_of_own_network_vs_others": result["speedup_of_own_network_vs_others"],
            "archs": {device: arch.to_string() for device, arch in networks.items()}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args, budget, work = common.parse_arguments(__doc__.split("\n\n")[0], argv)
    started = time.perf_counter()
    models = cost_models(work)
    space = get_space(common.SPACE)
    targets = {"reference": {device: common.reference_target(models[device], budget)
                             for device in DEVICES}}
    for candidate in CAPACITY_LEVELS:
        targets[f"capacity-matched-{candidate}"] = {
            device: common.capacity_matched_target(models[device], budget, candidate)
            for device in DEVICES}
    output: dict[str, Any] = {"budget": budget.to_dict(), "targets": targets, "rules": {}}
    for rule, rule_targets in targets.items():
        proxies = PROXIES if rule == "reference" else {"mflops": PROXIES["mflops"]}
        for proxy_name, proxy in proxies.items():
            networks = {}
            for device, target in rule_targets.items():
                found = common.largest_within(proxy, models[device], budget, target,
                                              lower_bound(target, budget.target_form))
                if found is None:
                    raise SystemExit(f"no network of the space is within {device}'s target")
                networks[device] = space.to_arch(found)
            entry = priced(networks, models, proxy)
            output["rules"][f"{rule}/{proxy_name}"] = entry
            wins = sum(entry["fastest_on_own_device"].values())
            ties = sum(entry["fastest_or_tied_on_own_device"].values())
            print(f"{rule} targets, most {proxy_name}: {wins} of {len(DEVICES)} fastest on "
                  f"their own device, {ties} fastest or tied within 0.5 %")
    return common.write_output(Path(args.out), "dnas_devices_bound", args.quick, output, started)


if __name__ == "__main__":
    main()
