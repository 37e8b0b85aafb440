"""DNAS over NAS-Bench-201 cells, judged by the benchmark's true accuracies and device
latencies (issue 15, part 4), from one CPU warm-up of the cell supernet.

1. The warm-up (``supernet`` section, ``warmup_epochs = epochs``: theta never moves and every cell
   is trained as often) of :class:`hwnas.dnas.cellwise.CellSuperNet` (one ``theta`` shared by
   every cell) on CIFAR-10, cached per setting in ``benchmarks/work/nb201_supernet/``.
2. The ranking diagnostic: ``paths`` uniformly random cells scored on ``test_images`` held-out
   images with BatchNorm on batch statistics (:func:`hwnas.dnas.diagnostics.path_losses`);
   Kendall's tau of their supernet accuracy against NB201's ``accuracy_column``, beside the tau
   of the cells' MFLOPs (a zero-cost proxy).
3. For each device column (``--devices``, default all of ``nb201_latency.csv.gz``) and budget
   (``budget_percentiles`` of that device's latencies): FBNet DNAS from the warm-up's weights
   (``dnas`` section; LAT the column's additive fit, the budget form of the loss), answering
   the most probable connected cell within the budget by the table (and, reported beside it,
   the most probable cell of any kind: the engine's derivation before cut-off cells were
   excluded). Scored: its true accuracy, regret
   against the best feasible cell, its latency on every device.
4. Baselines: a random feasible cell (the mean true accuracy of the feasible cells, exact), and
   weight-sharing random search: the best supernet score among the first ``ws_cells`` feasible
   cells of one shared pool of ``pool`` random cells (``ws_cells`` x ``test_images`` forward
   passes ~ the image passes of one search, counting a backward pass as two forwards).
5. Device specificity: each device's cell scored on every device; on each device, whether its
   own cell is the most accurate of the devices' cells that are feasible there.

    python -m benchmarks.experiments.nb201_supernet           # ~1 hour (warm-up ~45 minutes)
    python -m benchmarks.experiments.nb201_supernet --quick   # smoke run
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy.stats import kendalltau

from benchmarks.experiments import common
from hwnas import settings
from hwnas.compute import torch_threads
from hwnas.cost.device_table import NB201Latency
from hwnas.cost.flops import FlopsCost
from hwnas.data.cifar import load_cifar10
from hwnas.data.tables import nb201_accuracy, nb201_accuracy_columns, nb201_latency_columns
from hwnas.dnas.cellwise import CellSuperNet, most_probable_cell_within, run_cell_dnas
from hwnas.dnas.checkpoint import load_supernet_weights
from hwnas.dnas.config import SearchSettings
from hwnas.dnas.data import search_batches
from hwnas.dnas.diagnostics import fixed_test_images, path_losses
from hwnas.dnas.engine import SearchProgress
from hwnas.errors import HwnasError
from hwnas.settings import check
from hwnas.spaces.nb201 import NB201Space

NAME = "nb201_supernet"


@dataclass(frozen=True, kw_only=True)
class SupernetConfig:
    """The ``benchmark`` section of ``configs/benchmarks/nb201_supernet.yaml``."""

    channels: int = common.required("Supernet width C (NB201: 16).", minimum=1)
    cells: int = common.required("Cells per stage N (NB201: 5).", minimum=1)
    paths: int = common.required("Random cells of the ranking diagnostic.", minimum=3)
    pool: int = common.required("Random cells scored once for weight-sharing random search.",
                                minimum=3)
    ws_cells: int = common.required("Feasible pool cells a weight-sharing random search "
                                    "compares (its compute).", minimum=1)
    test_images: int = common.required("Held-out images every cell is scored on.", minimum=10)
    accuracy_column: str = common.required("Column of nb201_accuracy.csv.gz judging cells.")
    devices: tuple[str, ...] = common.required("Latency columns searched for.")
    budget_percentiles: tuple[float, ...] = common.required("Budgets: percentiles of each "
                                                            "device's latencies.")

    def __post_init__(self) -> None:
        check(self)
        if self.accuracy_column not in nb201_accuracy_columns():
            raise HwnasError(f"unknown accuracy column {self.accuracy_column!r} (known: "
                             f"{', '.join(nb201_accuracy_columns())})")
        unknown = [name for name in self.devices if name not in nb201_latency_columns()]
        if unknown or not self.devices:
            raise HwnasError(f"unknown latency columns {unknown!r} (known: "
                             f"{', '.join(nb201_latency_columns())})")


def epoch_progress(epochs: int) -> Callable[[SearchProgress], None]:
    """One line as each epoch starts."""
    started: set[int] = set()

    def report(progress: SearchProgress) -> None:
        if progress.epoch not in started:
            started.add(progress.epoch)
            print(f"  epoch {progress.epoch + 1}/{epochs} (loss {progress.loss:.3f})", flush=True)
    return report


def warm_up(data: Any, warmup: SearchSettings, own: SupernetConfig, work: Path) -> Path:
    """The warm-up's run folder, trained unless a finished one of these settings is there."""
    identity = {"dnas": settings.to_dict(warmup), "channels": own.channels, "cells": own.cells}
    digest = hashlib.blake2b(json.dumps(identity, sort_keys=True).encode(), digest_size=4)
    run = work / f"warmup-{digest.hexdigest()}"  # one folder per warm-up setting, kept
    if not (run / "result.json").exists():  # a killed warm-up resumes from its checkpoint
        print(f"warm-up: {warmup.epochs} epochs", flush=True)
        weights, theta = search_batches(data, warmup)
        run_cell_dnas(FlopsCost(), weights, theta, warmup, run_dir=run, resume=run.exists(),
                      plots=False, channels=own.channels, cells=own.cells,
                      progress=epoch_progress(warmup.epochs))
    return run


def searched_cells(data: Any, search: SearchSettings, own: SupernetConfig, warmup_run: Path,
                   work: Path) -> dict[str, list[dict[str, Any]]]:
    """Per device, per budget: the DNAS answer (most probable cell within the budget)."""
    digest = hashlib.blake2b(json.dumps(settings.to_dict(search), sort_keys=True).encode(),
                             digest_size=4).hexdigest()
    found: dict[str, list[dict[str, Any]]] = {}
    for device in own.devices:
        model = NB201Latency(device)
        found[device] = []
        for percentile in own.budget_percentiles:
            limit = float(np.percentile(model.values, percentile))
            run = work / f"search-{digest}-{warmup_run.name}" / f"{device}-p{percentile:g}"
            if not (run / "result.json").exists():
                print(f"DNAS for {device} within {limit:.3f} ms (p{percentile:g})", flush=True)
                config = settings.replace(search, target_latency=limit)
                weights, theta = search_batches(data, config)
                run_cell_dnas(model, weights, theta, config, run_dir=run,
                              resume=common.resumable(run), plots=False,
                              channels=own.channels, cells=own.cells,
                              warm_start=warmup_run / "checkpoint.pt",
                              progress=epoch_progress(search.epochs))
            result = json.loads((run / "result.json").read_text())
            history = [json.loads(line) for line in (run / "history.jsonl").open()]
            probabilities = np.asarray(result["probabilities"])
            answers = {name: most_probable_cell_within(NB201Space(), probabilities, model, limit,
                                                       connected_only=only)
                       for name, only in (("connected", True), ("any", False))}
            found[device].append({"percentile": percentile, "limit_ms": limit,
                                  "choices": answers["connected"].choices,
                                  "any_cell_choices": answers["any"].choices, "run": str(run),
                                  "seconds": sum(row["seconds"] for row in history)})
    return found


def score(space: NB201Space, cells: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return truth[space.indices(cells)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(__doc__.split("\n\n")[0], NAME)
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    loaded = common.load_preset(NAME, {"supernet": SearchSettings, "dnas": SearchSettings,
                                       "benchmark": SupernetConfig},
                                quick=arguments.quick, path=arguments.config)[0]
    warmup, search, own = loaded["supernet"], loaded["dnas"], loaded["benchmark"]
    if warmup.warmup_epochs != warmup.epochs:
        raise HwnasError("the supernet section must warm up only (warmup_epochs = epochs)")
    if search.warmup_epochs or search.target_form != "budget":
        raise HwnasError("the dnas section searches from the warm-up under a budget: "
                         "warmup_epochs 0, target_form budget")
    space, work = NB201Space(), common.WORK / (NAME + ("_quick" if arguments.quick else ""))
    data = load_cifar10()
    warmup_run = warm_up(data, warmup, own, work)
    warmup_seconds = sum(json.loads(line)["seconds"]
                         for line in (warmup_run / "history.jsonl").open())
    supernet = CellSuperNet(own.channels, own.cells)
    load_supernet_weights(warmup_run / "checkpoint.pt", supernet)
    rng = np.random.default_rng(warmup.seed)
    pool = space.decisions.sample(max(own.paths, own.pool), rng)
    images, labels = fixed_test_images(data, own.test_images, warmup.seed)
    scoring = time.perf_counter()
    with torch_threads(search.threads):
        losses = path_losses(supernet, images, labels, [tuple(int(op) for op in row)
                                                        for row in pool])
    scoring = time.perf_counter() - scoring
    truth = nb201_accuracy(own.accuracy_column)
    pool_truth = score(space, pool, truth)
    paths = slice(0, own.paths)
    flops = FlopsCost().choice_cost(space)(pool[paths])
    ranking = {"kendall_supernet_accuracy": float(kendalltau(losses.accuracy[paths],
                                                             pool_truth[paths])[0]),
               "kendall_supernet_cross_entropy": float(kendalltau(-losses.cross_entropy[paths],
                                                                  pool_truth[paths])[0]),
               "kendall_mflops": float(kendalltau(flops, pool_truth[paths])[0])}
    print(f"{own.paths} random cells: Kendall tau of the supernet's accuracy "
          f"{ranking['kendall_supernet_accuracy']:.3f} (of its -CE "
          f"{ranking['kendall_supernet_cross_entropy']:.3f}), of MFLOPs "
          f"{ranking['kendall_mflops']:.3f}, against {own.accuracy_column}")
    found = searched_cells(data, search, own, warmup_run, work)
    everything = space.all_choices()
    latency = {device: NB201Latency(device).values for device in own.devices}
    budgets = []
    for position, percentile in enumerate(own.budget_percentiles):
        rows = {}
        for device in own.devices:
            answer = found[device][position]
            limit = answer["limit_ms"]
            feasible = latency[device] <= limit
            index = space.index_of(tuple(answer["choices"]))
            any_index = space.index_of(tuple(answer["any_cell_choices"]))
            in_pool = np.flatnonzero(latency[device][space.indices(pool)] <= limit)
            compared = in_pool[:own.ws_cells]
            ws_pick = compared[np.argmax(losses.accuracy[compared])] if len(compared) else None
            best = float(truth[feasible].max())
            rows[device] = {
                "limit_ms": limit, "feasible_cells": int(feasible.sum()),
                "best_feasible": best, "cell": space.format(everything[index]),
                "accuracy": float(truth[index]), "regret": best - float(truth[index]),
                "feasible": bool(feasible[index]), "search_seconds": answer["seconds"],
                "any_cell_derivation": {"cell": space.format(everything[any_index]),
                                        "accuracy": float(truth[any_index]),
                                        "regret": best - float(truth[any_index])},
                "latency_on": {other: float(latency[other][index]) for other in own.devices},
                "random_feasible_accuracy": float(truth[feasible].mean()),
                "random_feasible_regret": best - float(truth[feasible].mean()),
                "ws_random_search": None if ws_pick is None else {
                    "cells_compared": int(len(compared)), "cell": space.format(pool[ws_pick]),
                    "accuracy": float(pool_truth[ws_pick]),
                    "regret": best - float(pool_truth[ws_pick])}}
        budgets.append({"percentile": percentile, "devices": rows,
                        "specificity": specificity(rows, latency, truth, space)})
    summary = summarise(budgets)
    print(json.dumps(summary, indent=1))
    output = {"settings": {"supernet": settings.to_dict(warmup), "dnas": settings.to_dict(search),
                           "benchmark": settings.to_dict(own)},
              **ranking, "warmup_run": str(warmup_run), "warmup_seconds": warmup_seconds,
              "pool_scoring_seconds": scoring, "summary": summary, "budgets": budgets,
              "cells": [{"cell": space.format(row), "supernet_accuracy": float(accuracy),
                         "supernet_cross_entropy": float(loss), "table_accuracy": float(true),
                         "mflops": float(cost)}
                        for row, accuracy, loss, true, cost in zip(
                            pool[paths], losses.accuracy[paths], losses.cross_entropy[paths],
                            pool_truth[paths], flops)],
              "machine": common.machine()}
    plot(budgets, common.output_path(arguments.out, NAME, arguments.quick, ".png"))
    return common.write_output(arguments.out, NAME, arguments.quick, output, started)


def specificity(rows: dict[str, dict[str, Any]], latency: dict[str, np.ndarray],
                truth: np.ndarray, space: NB201Space) -> dict[str, Any]:
    """Each device's cell on every device: accuracy where feasible there (None where not); on
    each device, whether its own cell is the most accurate feasible one (ties count)."""
    indices = {device: space.index_of(space.parse(row["cell"])) for device, row in rows.items()}
    matrix, own_best = {}, {}
    for target, row in rows.items():
        scores = {source: (float(truth[index]) if latency[target][index] <= row["limit_ms"]
                           else None) for source, index in indices.items()}
        matrix[target] = scores
        feasible = [value for value in scores.values() if value is not None]
        own_best[target] = scores[target] is not None and scores[target] >= max(feasible)
    return {"matrix": matrix, "own_cell_best": own_best,
            "devices_own_best": int(sum(own_best.values())), "devices": len(rows)}


def summarise(budgets: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [row for budget in budgets for row in budget["devices"].values()]
    ws = [row["ws_random_search"]["regret"] for row in rows if row["ws_random_search"]]
    return {"cells": len(rows), "feasible": int(sum(row["feasible"] for row in rows)),
            "median_regret_dnas": float(np.median([row["regret"] for row in rows])),
            "median_regret_dnas_any_cell": float(np.median(
                [row["any_cell_derivation"]["regret"] for row in rows])),
            "median_regret_ws_random_search": float(np.median(ws)) if ws else None,
            "median_regret_random_feasible": float(np.median(
                [row["random_feasible_regret"] for row in rows])),
            "devices_own_best_per_budget": {
                f"p{budget['percentile']:g}": budget["specificity"]["devices_own_best"]
                for budget in budgets}}


def plot(budgets: list[dict[str, Any]], path: Path) -> None:
    """Regret per device and budget: DNAS, weight-sharing random search, a random feasible
    cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(budgets), figsize=(4.2 * len(budgets), 3.8),
                                squeeze=False, sharey=True)
    for axis, budget in zip(axes[0], budgets):
        devices = list(budget["devices"])
        x = np.arange(len(devices))
        methods = (("DNAS", lambda row: row["regret"]),
                   ("WS random search", lambda row: (row["ws_random_search"] or {}).get(
                       "regret", np.nan)),
                   ("random feasible", lambda row: row["random_feasible_regret"]))
        for offset, (label, value) in enumerate(methods):
            axis.bar(x + 0.27 * (offset - 1), [value(budget["devices"][d]) for d in devices],
                     0.27, label=label)
        axis.set_xticks(x, [d.replace("_latency_ms", "").replace("hwnb_cifar10_", "")
                            for d in devices], rotation=45, ha="right", fontsize=8)
        axis.set_title(f"budget p{budget['percentile']:g}")
        axis.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("regret, accuracy points (NB201 200 epochs)")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
