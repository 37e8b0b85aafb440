"""ChamNet vs random search vs regularized evolution on NAS-Bench-201 with real device latencies.

Method: for each device column of ``nb201_latency.csv.gz`` (``devices``; none: every column) and
latency budgets at its ``percentiles``, each method evaluates N = ``counts`` architectures
(``seeds`` seeds) and returns its best feasible evaluated architecture; regret = best feasible
accuracy in the table minus the returned architecture's accuracy, both on the report column
(``accuracy_column``). Protocols:

* ``oracle``: search on the report column itself;
* ``proxy``: search on ``search_column`` (12-epoch validation), report the 200-epoch test.

Every method is anytime and run once to the largest N: ChamNet's picks for the first n
evaluations do not depend on N, random search's first n samples are a random search of n, and
REA's first n evaluations are REA run for n. So the answers at smaller N are prefixes of the
largest N's runs (nothing else is shared between N). ChamNet: the preset's ``chamnet`` section
(:class:`hwnas.evolution.config.ChamNetConfig`; its seed is each run's); REA: population
``rea_population``, tournament ``rea_sample_size``. Settings: ``configs/benchmarks/
chamnet_nb201.yaml``. Run (18 minutes with 2 workers)::

    python -m benchmarks.experiments.chamnet_nb201
    python -m benchmarks.experiments.chamnet_nb201 --quick   # 2 devices, 2 seeds, N <= 50

Writes ``benchmarks/results/chamnet_nb201.json`` as
``{protocol: {device: {budget_pct: {N: {"chamnet": r, "random": r, "rea": r}}}}}`` (median
regret over seeds, points) and ``chamnet_nb201_summary.json`` (per-N medians over cells, cells
within 0.3 points, wins, settings, wall time).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from dataclasses import dataclass

import numpy as np

from benchmarks.experiments import common
from hwnas import settings
from hwnas.cost.device_table import NB201Latency
from hwnas.data.tables import nb201_latency, nb201_latency_columns
from hwnas.errors import HwnasError
from hwnas.evolution.baselines import random_search, regularized_evolution
from hwnas.evolution.chamnet import run_chamnet
from hwnas.evolution.config import ChamNetConfig
from hwnas.evolution.evaluators import NB201Evaluator
from hwnas.io import atomic_write_json
from hwnas.settings import check

NAME = "chamnet_nb201"
METHODS = ("chamnet", "random", "rea")
#: a cell "reaches" the target when its median regret is at most this many points
WITHIN = 0.3


@dataclass(frozen=True, kw_only=True)
class ChamNetNB201Config:
    """The ``benchmark`` section of ``configs/benchmarks/chamnet_nb201.yaml``."""

    accuracy_column: str = common.required("NB201 accuracy column reported (and the oracle's "
                                           "search signal).")
    search_column: str = common.required("The proxy protocol's search signal.")
    devices: tuple[str, ...] | None = common.required(
        "Latency columns of nb201_latency.csv.gz (none: all).")
    percentiles: tuple[int, ...] = common.required("Budgets at these latency percentiles.")
    counts: tuple[int, ...] = common.required(
        "Evaluations N reported; the largest is the chamnet section's evaluations.")
    seeds: int = common.required("Seeds (0..seeds-1) per cell.", minimum=1)
    workers: int = common.required("Worker processes.", minimum=1)
    rea_population: int = common.required("Regularized evolution's population.", minimum=2)
    rea_sample_size: int = common.required("Regularized evolution's tournament size.",
                                           minimum=1)

    def __post_init__(self) -> None:
        check(self)


def one_task(task: tuple) -> dict:
    """Regrets of the three methods for one (protocol, device, percentile, seed)."""
    protocol, search_column, own_dict, chamnet_dict, device, pct, seed = task
    own = settings.from_mapping(ChamNetNB201Config, own_dict)
    config = settings.replace(settings.from_mapping(ChamNetConfig, chamnet_dict), seed=seed)
    evaluator = NB201Evaluator(search_column, report_column=own.accuracy_column)
    latency = nb201_latency(device)
    limit = float(np.percentile(latency, pct))
    best = evaluator.best_feasible(latency <= limit)
    budget = (NB201Latency(device), limit)
    regrets: dict[str, dict[int, float]] = {method: {} for method in METHODS}
    started = time.perf_counter()
    chamnet = run_chamnet(evaluator.space, evaluator, [budget], config)
    seconds = {"chamnet": time.perf_counter() - started}
    for count in own.counts:
        answer = chamnet.best_within(0, count)
        regrets["chamnet"][count] = best - answer["report"]
    baselines = {"random": lambda: random_search(evaluator.space, evaluator, budget,
                                                 evaluations=config.evaluations, seed=seed),
                 "rea": lambda: regularized_evolution(
                     evaluator.space, evaluator, budget, evaluations=config.evaluations,
                     population=own.rea_population, sample_size=own.rea_sample_size,
                     seed=seed)}
    for method, function in baselines.items():
        started = time.perf_counter()
        result = function()
        seconds[method] = time.perf_counter() - started
        if np.any(result.accuracy > 100):
            raise RuntimeError("accuracy above 100 %")
        for count in own.counts:
            row = result.best_within(count)
            regrets[method][count] = best - float(result.report[row])
    return {"protocol": protocol, "device": device, "pct": pct, "seed": seed,
            "regrets": regrets, "seconds": seconds, "tau": chamnet.predictor["kendall_tau"]}


def summarise(rows: list[dict], protocols: dict, devices: list[str],
              own: ChamNetNB201Config) -> tuple[dict, dict]:
    table: dict = {}
    for protocol in protocols:
        table[protocol] = {}
        for device in devices:
            table[protocol][device] = {}
            for pct in own.percentiles:
                cell = [r for r in rows if (r["protocol"], r["device"], r["pct"]) ==
                        (protocol, device, pct)]
                table[protocol][device][str(pct)] = {
                    str(count): {method: float(np.median([r["regrets"][method][count]
                                                          for r in cell]))
                                 for method in METHODS}
                    for count in own.counts}
    summary: dict = {}
    for protocol in protocols:
        summary[protocol] = {}
        for count in own.counts:
            cells = [table[protocol][d][str(p)][str(count)] for d in devices
                     for p in own.percentiles]
            summary[protocol][str(count)] = {
                **{f"{m}_median_over_cells": float(np.median([c[m] for c in cells]))
                   for m in METHODS},
                **{f"{m}_cells_within_{WITHIN}": int(sum(c[m] <= WITHIN for c in cells))
                   for m in METHODS},
                "chamnet_below_both_cells": int(sum(c["chamnet"] < min(c["random"], c["rea"])
                                                    for c in cells)),
                "chamnet_at_or_below_both_cells": int(sum(
                    c["chamnet"] <= min(c["random"], c["rea"]) for c in cells)),
                "cells": len(cells)}
    return table, summary


def main(argv: list[str] | None = None) -> None:
    arguments = common.parser(__doc__.split("\n")[0], NAME).parse_args(argv)
    loaded, source = common.load_preset(
        NAME, {"chamnet": ChamNetConfig, "benchmark": ChamNetNB201Config},
        quick=arguments.quick, path=arguments.config)
    chamnet, own = loaded["chamnet"], loaded["benchmark"]
    if max(own.counts) != chamnet.evaluations:
        raise HwnasError(f"the largest count ({max(own.counts)}) must be the chamnet section's "
                         f"evaluations ({chamnet.evaluations})")
    logging.basicConfig(level=logging.WARNING)
    devices = list(own.devices or nb201_latency_columns())
    protocols = {"oracle": own.accuracy_column, "proxy": own.search_column}
    own_dict, chamnet_dict = settings.to_dict(own), settings.to_dict(chamnet)
    tasks = [(protocol, column, own_dict, chamnet_dict, device, pct, seed)
             for protocol, column in protocols.items() for device in devices
             for pct in own.percentiles for seed in range(own.seeds)]
    started = time.perf_counter()
    with multiprocessing.Pool(own.workers) as pool:
        rows = []
        for done, row in enumerate(pool.imap_unordered(one_task, tasks), start=1):
            rows.append(row)
            if done % 20 == 0 or done == len(tasks):
                print(f"{done}/{len(tasks)} runs, {time.perf_counter() - started:.0f} s",
                      flush=True)
    table, summary = summarise(rows, protocols, devices, own)
    wall = time.perf_counter() - started
    path = common.output_path(arguments.out, NAME, arguments.quick)
    atomic_write_json(path, table)
    seconds = {m: float(np.mean([r["seconds"][m] for r in rows])) for m in METHODS}
    taus = [r["tau"] for r in rows if r["tau"] is not None]
    atomic_write_json(common.output_path(arguments.out, f"{NAME}_summary", arguments.quick), {
        "summary": summary, "wall_seconds": wall, "workers": own.workers,
        "mean_seconds_per_run": seconds, "runs": len(rows), "seeds": own.seeds,
        "devices": devices, "percentiles": list(own.percentiles), "counts": list(own.counts),
        "protocols": protocols, "chamnet": {"initial_samples": chamnet.initial_samples,
                                            "batch_size": chamnet.batch_size},
        "rea": {"population": own.rea_population, "sample_size": own.rea_sample_size},
        "median_prospective_gp_kendall_tau": float(np.median(taus)) if taus else None,
        "settings": {"preset": source, "chamnet": chamnet_dict, "benchmark": own_dict}})
    print(json.dumps(summary, indent=1))
    print(f"wall {wall:.0f} s")


if __name__ == "__main__":
    common.run(main)
