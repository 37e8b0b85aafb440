"""ChamNet vs random search vs regularized evolution on NAS-Bench-201 with real device latencies.

For each device column of ``nb201_latency.csv.gz`` and latency budgets at its 25th/50th/75th
percentile, each method evaluates N = 25, 50, 100 architectures (20 seeds) and returns its best
feasible evaluated architecture; regret = best feasible accuracy in the table minus the returned
architecture's accuracy, both on the report column (``cifar10_test_200ep``). Protocols:

* ``oracle``: search on the report column itself;
* ``proxy``: search on ``cifar10valid_valid_12ep`` (12-epoch validation), report 200-epoch test.

Every method is anytime and run once to the largest N: ChamNet's picks for the first n
evaluations do not depend on N, random search's first n samples are a random search of n, and
REA's first n evaluations are REA run for n. So the answers at 25 and 50 are prefixes of the
N = 100 runs (that is what is done here; nothing else is shared between N).

    python -m benchmarks.chamnet_nb201 [--accuracy-column C] [--search-column C2]
        [--devices D ...] [--seeds 20] [--workers 2] [--quick]

Writes ``benchmarks/results/chamnet_nb201.json`` as
``{protocol: {device: {budget_pct: {N: {"chamnet": r, "random": r, "rea": r}}}}}`` (median
regret over seeds, points) and ``chamnet_nb201_summary.json`` (per-N medians over cells, cells
within 0.3 points, wins, settings, wall time).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import time
from pathlib import Path

import numpy as np

from hwnas.data.tables import nb201_latency, nb201_latency_columns
from hwnas.evolution.baselines import random_search, regularized_evolution
from hwnas.evolution.chamnet import run_chamnet
from hwnas.evolution.evaluators import NB201Evaluator
from hwnas.io import atomic_write_json

RESULTS = Path(__file__).parent / "results"
PERCENTILES = (25, 50, 75)
COUNTS = (25, 50, 100)
METHODS = ("chamnet", "random", "rea")


def one_task(task: tuple) -> dict:
    """Regrets of the three methods for one (protocol, device, percentile, seed)."""
    protocol, search_column, report_column, device, pct, seed, counts, batch_size = task
    evaluator = NB201Evaluator(search_column, report_column=report_column)
    latency = nb201_latency(device)
    limit = float(np.percentile(latency, pct))
    best = evaluator.best_feasible(latency <= limit)
    budget = (evaluator.latency_cost(device), limit)
    largest = max(counts)
    regrets: dict[str, dict[int, float]] = {method: {} for method in METHODS}
    started = time.perf_counter()
    chamnet = run_chamnet(evaluator.space, evaluator, [budget], evaluations=largest,
                          initial_samples=10, batch_size=batch_size, seed=seed)
    seconds = {"chamnet": time.perf_counter() - started}
    for count in counts:
        answer = chamnet.best_within(0, count)
        regrets["chamnet"][count] = best - answer["report"]
    for method, function in (("random", random_search), ("rea", regularized_evolution)):
        started = time.perf_counter()
        result = function(evaluator.space, evaluator, budget, evaluations=largest, seed=seed)
        seconds[method] = time.perf_counter() - started
        if np.any(result.accuracy > 100):
            raise RuntimeError("accuracy above 100 %")
        for count in counts:
            row = result.best_within(count)
            regrets[method][count] = best - float(result.report[row])
    return {"protocol": protocol, "device": device, "pct": pct, "seed": seed,
            "regrets": regrets, "seconds": seconds,
            "tau": chamnet.predictor["kendall_tau"]}


def summarise(rows: list[dict], protocols: dict, devices: list[str], counts: tuple) -> tuple:
    table: dict = {}
    for protocol in protocols:
        table[protocol] = {}
        for device in devices:
            table[protocol][device] = {}
            for pct in PERCENTILES:
                cell = [r for r in rows if (r["protocol"], r["device"], r["pct"]) ==
                        (protocol, device, pct)]
                table[protocol][device][str(pct)] = {
                    str(count): {method: float(np.median([r["regrets"][method][count]
                                                          for r in cell]))
                                 for method in METHODS}
                    for count in counts}
    summary: dict = {}
    for protocol in protocols:
        summary[protocol] = {}
        for count in counts:
            cells = [table[protocol][d][str(p)][str(count)] for d in devices
                     for p in PERCENTILES]
            summary[protocol][str(count)] = {
                **{f"{m}_median_over_cells": float(np.median([c[m] for c in cells]))
                   for m in METHODS},
                **{f"{m}_cells_within_0.3": int(sum(c[m] <= 0.3 for c in cells))
                   for m in METHODS},
                "chamnet_below_both_cells": int(sum(c["chamnet"] < min(c["random"], c["rea"])
                                                    for c in cells)),
                "chamnet_at_or_below_both_cells": int(sum(
                    c["chamnet"] <= min(c["random"], c["rea"]) for c in cells)),
                "cells": len(cells)}
    return table, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accuracy-column", default="cifar10_test_200ep")
    parser.add_argument("--search-column", default="cifar10valid_valid_12ep")
    parser.add_argument("--devices", nargs="*", default=None)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="2 devices, 2 seeds, N <= 50")
    parser.add_argument("--out", type=Path, default=RESULTS / "chamnet_nb201.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    devices = args.devices or list(nb201_latency_columns())
    counts, seeds = COUNTS, args.seeds
    if args.quick:
        devices, counts, seeds = devices[:2], (25, 50), min(seeds, 2)
    protocols = {"oracle": args.accuracy_column, "proxy": args.search_column}
    tasks = [(protocol, column, args.accuracy_column, device, pct, seed, counts,
              args.batch_size)
             for protocol, column in protocols.items() for device in devices
             for pct in PERCENTILES for seed in range(seeds)]
    started = time.perf_counter()
    with multiprocessing.Pool(args.workers) as pool:
        rows = []
        for done, row in enumerate(pool.imap_unordered(one_task, tasks), start=1):
            rows.append(row)
            if done % 20 == 0 or done == len(tasks):
                print(f"{done}/{len(tasks)} runs, {time.perf_counter() - started:.0f} s",
                      flush=True)
    table, summary = summarise(rows, protocols, devices, counts)
    wall = time.perf_counter() - started
    atomic_write_json(args.out, table)
    seconds = {m: float(np.mean([r["seconds"][m] for r in rows])) for m in METHODS}
    taus = [r["tau"] for r in rows if r["tau"] is not None]
    atomic_write_json(args.out.with_name(args.out.stem + "_summary.json"), {
        "summary": summary, "wall_seconds": wall, "workers": args.workers,
        "mean_seconds_per_run": seconds, "runs": len(rows), "seeds": seeds,
        "devices": devices, "percentiles": list(PERCENTILES), "counts": list(counts),
        "protocols": protocols, "chamnet": {"initial_samples": 10,
                                            "batch_size": args.batch_size},
        "rea": {"population": 20, "sample_size": 5},
        "median_prospective_gp_kendall_tau": float(np.median(taus)) if taus else None})
    print(json.dumps(summary, indent=1))
    print(f"wall {wall:.0f} s")


if __name__ == "__main__":
    main()
