"""Is the network searched for a device the fastest on that device? (FBNet, Wu et al. 2019: the
iPhone X network ran 1.4x faster on the iPhone X than the Samsung S8 network.)

Method: one FBNet DNAS search per cost model, on the same CIFAR-10 data and budget
(``configs/benchmarks/dnas.yaml``): the HW-NAS-Bench FBNet tables of raspi4, pixel3, eyeriss and
fpga and this CPU's measured ONNX Runtime LUT ("local"; the devices are
``configs/benchmarks/dnas_devices.yaml``'s). All start from one shared weight warm-up of the
supernet; each then alternates weight and theta epochs with the preset's loss and target
T = the device's cost of the all-<reference_candidate> network. The most probable network within
T is priced on every device (the four tables; "local" is measured end to end here, not
predicted) and trained with one identical recipe. Writes ``benchmarks/results/dnas_devices.json``::

    {"latency_ms": {searched_for: {run_on: ms}}, "accuracy": {searched_for: top1}, ...}

Targets: each device's network is the fastest of the five on its own device, accuracies within
``accuracy_spread_points`` of each other. Run (resumable; every step cached in
``benchmarks/work/dnas``)::

    python -m benchmarks.experiments.dnas_devices                 # compute and timing
    python -m benchmarks.experiments.dnas_devices --skip-latency  # compute only; time it alone
    python -m benchmarks.experiments.dnas_devices --quick         # smoke run

Variants of the search, each with its own searches, trainings and ``dnas_devices<suffix>.json``
(e.g. ``dnas_devices-fbnet-loss.json``): ``--loss fbnet`` (FBNet's loss without a target),
``--loss budget`` (the one-sided budget at the same T), ``--capacity-level k5_e3`` (the target of
:func:`common.capacity_matched_target` instead of the reference target), ``--weight-sharing
nested`` and ``--residual-scale S`` (the supernet, from its own warm-up).

Two analyses of the same searches, predicted costs only (no training, no timing):

* ``--bound`` writes ``dnas_devices_bound.json``: how many devices could win with a perfect
  accuracy signal? The search's signal is replaced by an exact optimum of a device-independent
  capacity proxy: per device, the network with the most MFLOPs (or parameters) whose predicted
  cost is within the device's band, by the derivation's knapsack
  (:func:`common.largest_within`), under the reference targets and under capacity-matched
  targets at the ``capacity_levels``. Every network is priced on all five cost models.
* ``--compare-losses`` writes ``dnas_devices_loss.json``: the searches of the preset's loss,
  of FBNet's loss without a target and of the capacity-matched target at
  ``loss_capacity_level``, each derived two ways (argmax; most probable within the target, the
  device's reference target for the loss without one) and priced on all five cost models.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from benchmarks.experiments import common
from hwnas.arch.spec import ArchSpec
from hwnas.cost.base import CostModel
from hwnas.cost.device_table import DEVICE_NAMES, load_device_table
from hwnas.cost.flops import FlopsCost, ParamsCost
from hwnas.dnas.result import lower_bound
from hwnas.errors import HwnasError
from hwnas import settings
from hwnas.settings import check

NAME = "dnas_devices"
LOCAL = "local"
#: the capacity proxies of ``--bound`` (the reference rule tries both; the capacity-matched
#: rules maximise MFLOPs, the capacity they equalise)
PROXIES = {"mflops": FlopsCost(), "mparams": ParamsCost()}


@dataclass(frozen=True, kw_only=True)
class DevicesConfig:
    """The ``benchmark`` section of ``configs/benchmarks/dnas_devices.yaml``."""

    devices: tuple[str, ...] = common.required(
        f"Cost models searched for: {LOCAL} (this CPU's LUT) and HW-NAS-Bench device tables.")
    accuracy_spread_points: float = common.required(
        "Target: the networks' top-1 within this many points.", minimum=0)
    capacity_levels: tuple[str, ...] = common.required(
        "--bound: candidates whose all-<candidate> MFLOPs set the capacity-matched targets.")
    tie: float = common.required("--bound: a cost within this factor of the best is a tie.",
                                 minimum=1)
    loss_capacity_level: str = common.required(
        "--compare-losses: the capacity level of the capacity-matched variant.")

    def __post_init__(self) -> None:
        check(self)
        unknown = [name for name in self.devices if name != LOCAL and name not in DEVICE_NAMES]
        if unknown:
            raise HwnasError(f"unknown device {unknown[0]!r} (known: {LOCAL}, "
                             f"{', '.join(DEVICE_NAMES)})")


def cost_models(budget: common.DnasSettings, devices: tuple[str, ...],
                work: Path) -> dict[str, CostModel]:
    models: dict[str, CostModel] = {}
    for name in devices:
        # The tables price the 100-class network; a 10-class search differs only by the FC, a
        # constant that does not change which network is faster (HW-NAS-Bench issue #10).
        models[name] = (common.local_lut(budget, work) if name == LOCAL else
                        load_device_table(name, allow_num_classes_mismatch=True))
    return models


def summary(latency: Mapping[str, Mapping[str, float]], accuracy: Mapping[str, float],
            spread_target: float) -> dict[str, Any]:
    """Whether each device's network is the fastest on its own device, the speed-ups of its
    network over the others' there, and the accuracy spread against ``spread_target``."""
    devices = list(latency)
    fastest_on_own = {
        device: min(latency, key=lambda searched: latency[searched][device]) == device
        for device in devices}
    speedups = {device: {other: latency[other][device] / latency[device][device]
                         for other in devices if other != device} for device in devices}
    spread = max(accuracy.values()) - min(accuracy.values()) if accuracy else None
    plural = "" if spread_target == 1 else "s"
    return {"fastest_on_own_device": fastest_on_own,
            "all_fastest_on_own_device": all(fastest_on_own.values()),
            "speedup_of_own_network_vs_others": speedups,
            "accuracy_spread_points": spread,
            f"accuracy_within_{spread_target:g}_point{plural}":
                spread is not None and spread <= spread_target}


def priced(networks: Mapping[str, ArchSpec], models: Mapping[str, CostModel]
           ) -> dict[str, dict[str, float]]:
    """``{searched_for: {run_on: predicted cost}}``."""
    return {searched: {run_on: model.cost(arch) for run_on, model in models.items()}
            for searched, arch in networks.items()}


def fastest_on_own(cost: Mapping[str, Mapping[str, float]]) -> dict[str, bool]:
    return {device: min(cost, key=lambda searched: cost[searched][device]) == device
            for device in cost}


def bound(budget: common.DnasSettings, own: DevicesConfig, work: Path) -> dict[str, Any]:
    """``--bound`` (module docstring)."""
    models = cost_models(budget, own.devices, work)
    space = budget.space
    targets = {"reference": {device: common.reference_target(model, budget)
                             for device, model in models.items()}}
    for candidate in own.capacity_levels:
        targets[f"capacity-matched-{candidate}"] = {
            device: common.capacity_matched_target(model, budget, candidate)
            for device, model in models.items()}
    output: dict[str, Any] = {"settings": {**budget.to_dict(), NAME: settings.to_dict(own)},
                              "targets": targets, "rules": {}}
    form = budget.dnas.target_form
    for rule, rule_targets in targets.items():
        proxies = PROXIES if rule == "reference" else {"mflops": PROXIES["mflops"]}
        for proxy_name, proxy in proxies.items():
            networks = {}
            for device, target in rule_targets.items():
                found = common.largest_within(proxy, models[device], budget, target,
                                              lower_bound(target, form))
                if found is None:
                    raise HwnasError(f"no network of the space is within {device}'s target")
                networks[device] = space.to_arch(found)
            cost = priced(networks, models)
            entry = {
                "cost": cost,
                "fastest_or_tied_on_own_device": {
                    device: cost[device][device] <= own.tie * min(
                        cost[other][device] for other in cost if other != device)
                    for device in cost},
                "proxy_value": {device: proxy.cost(arch) for device, arch in networks.items()},
                "fastest_on_own_device": fastest_on_own(cost),
                "speedup_of_own_network_vs_others":
                    summary(cost, {}, own.accuracy_spread_points)[
                        "speedup_of_own_network_vs_others"],
                "archs": {device: arch.to_string() for device, arch in networks.items()}}
            output["rules"][f"{rule}/{proxy_name}"] = entry
            wins = sum(entry["fastest_on_own_device"].values())
            ties = sum(entry["fastest_or_tied_on_own_device"].values())
            print(f"{rule} targets, most {proxy_name}: {wins} of {len(cost)} fastest on their "
                  f"own device, {ties} fastest or tied within {100 * (own.tie - 1):g} %")
    return output


def compare_losses(budget: common.DnasSettings, own: DevicesConfig, work: Path
                   ) -> dict[str, Any]:
    """``--compare-losses`` (module docstring)."""
    models = cost_models(budget, own.devices, work)
    data = common.load_data()
    variants = {"two_sided_target": common.Variant(),
                "fbnet_no_target": common.Variant(loss="fbnet"),
                "capacity_matched_target": common.Variant(
                    capacity_level=own.loss_capacity_level)}
    searches = {loss: {device: common.search(device, model, data, budget, work, variant)
                       for device, model in models.items()}
                for loss, variant in variants.items()}
    output: dict[str, Any] = {
        "settings": {**budget.to_dict(), NAME: settings.to_dict(own)}, "machine": common.machine(),
        "targets": {device: common.reference_target(model, budget)
                    for device, model in models.items()},
        "capacity_matched_targets": {device: result.target_latency for device, result
                                     in searches["capacity_matched_target"].items()}}

    def entry(archs: Mapping[str, ArchSpec]) -> dict[str, Any]:
        cost = priced(archs, models)
        return {"cost": cost, "fastest_on_own_device": fastest_on_own(cost),
                "archs": {name: arch.to_string() for name, arch in archs.items()},
                "skips": {name: arch.to_string().count("skip_") for name, arch in archs.items()}}

    for loss, results in searches.items():
        output[loss] = {
            "argmax": entry({device: ArchSpec.from_string(result.argmax.arch)
                             for device, result in results.items()}),
            "within_target": entry({device: common.derived_network(result, models[device],
                                                                   budget)
                                    for device, result in results.items()}),
            "expected_cost": {device: result.expected_cost for device, result in results.items()}}
        for derivation in ("argmax", "within_target"):
            hits = output[loss][derivation]["fastest_on_own_device"]
            print(f"{loss:23s} {derivation:13s} fastest on own device: "
                  f"{sum(hits.values())}/{len(hits)} {[d for d, hit in hits.items() if hit]}")
    return output


def experiment(budget: common.DnasSettings, own: DevicesConfig, work: Path,
               variant: common.Variant, skip_latency: bool) -> dict[str, Any]:
    """The searches, trainings and latencies of ``variant`` (module docstring)."""
    models = cost_models(budget, own.devices, work)
    suffix = variant.suffix(budget.dnas)
    form = variant.config(budget.dnas).target_form if variant.loss != "fbnet" else None
    data = common.load_data()
    searched: dict[str, ArchSpec] = {}
    targets: dict[str, float | None] = {}
    for device, model in models.items():
        result = common.search(device, model, data, budget, work, variant)
        searched[device] = common.derived_network(result, model, budget, form)
        targets[device] = result.target_latency
    accuracy = {device: common.train_network(f"searched-{device}{suffix}", arch, data, budget,
                                             work)["final_top1"]
                for device, arch in searched.items()}
    output: dict[str, Any] = {
        "settings": {**budget.to_dict(), NAME: settings.to_dict(own)}, "machine": common.machine(),
        "variant": dataclasses.asdict(variant), "targets": targets,
        "archs": {device: arch.to_string() for device, arch in searched.items()},
        "accuracy": accuracy}
    if LOCAL in models:
        output["predicted_local_ms"] = {device: models[LOCAL].cost(arch)
                                        for device, arch in searched.items()}
    if not skip_latency:
        measured: dict[str, Any] = {}
        if LOCAL in models:
            measured = common.measured_latency(searched, models[LOCAL], budget, work,
                                               f"latency-dnas-devices{suffix}.json")
            output["local_engine"] = measured["engine"]
        output["latency_ms"] = {
            device: {run_on: (measured["ms"][device] if run_on == LOCAL else
                              model.cost(arch)) for run_on, model in models.items()}
            for device, arch in searched.items()}
        output["summary"] = summary(output["latency_ms"], accuracy, own.accuracy_spread_points)
    return output


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loss", choices=common.LOSSES, default=None,
                        help="the search's loss (default: the preset's target form)")
    parser.add_argument("--capacity-level", default=None,
                        help="capacity-matched targets at this candidate's MFLOPs "
                             "(common.capacity_matched_target)")
    parser.add_argument("--weight-sharing", choices=("independent", "nested"), default=None,
                        help="the supernet's (hwnas.dnas.nested; default: the preset's)")
    parser.add_argument("--residual-scale", type=float, default=None,
                        help="initial last-BN scale of the searched residual blocks")
    analyses = parser.add_mutually_exclusive_group()
    analyses.add_argument("--bound", action="store_true",
                          help="the exact-proxy bound: dnas_devices_bound.json")
    analyses.add_argument("--compare-losses", action="store_true",
                          help="three losses' searches priced: dnas_devices_loss.json")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    arguments, budget, work = common.dnas_arguments(__doc__.split("\n\n")[0], NAME, argv,
                                                    options)
    loaded, _ = common.load_preset(NAME, {"benchmark": DevicesConfig}, quick=arguments.quick,
                                   path=arguments.config)
    own = loaded["benchmark"]
    variant = common.Variant(loss=arguments.loss, capacity_level=arguments.capacity_level,
                             weight_sharing=arguments.weight_sharing,
                             residual_scale=arguments.residual_scale)
    started = time.perf_counter()
    if (arguments.bound or arguments.compare_losses) and variant != common.Variant():
        raise HwnasError("--bound and --compare-losses take no search variant")
    if arguments.bound:
        output, name = bound(budget, own, work), "dnas_devices_bound"
    elif arguments.compare_losses:
        output, name = compare_losses(budget, own, work), "dnas_devices_loss"
    else:
        output = experiment(budget, own, work, variant, arguments.skip_latency)
        name = NAME + variant.suffix(budget.dnas)
    return common.write_output(arguments.out, name, arguments.quick, output, started)


if __name__ == "__main__":
    common.run(main)
