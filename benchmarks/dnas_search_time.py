"""How long does one search of the DNAS benchmarks take on this machine, alone?

Times one weights-only (warm-up) epoch and one search epoch of ``dnas_common.Budget`` from the
same states the benchmarks use (a fresh supernet; the shared warm-up's checkpoint),
and extrapolates a whole search: ``warmup_epochs * warm-up epoch + search_epochs * search
epoch``. Needs ``dnas_devices`` (or ``dnas_quality``) to have written the warm-up checkpoint.
Writes ``benchmarks/results/dnas_search_time.json`` (``dnas_search_time_<n>t.json`` for another
thread count than the budget's). Run alone (about 5 minutes)::

    python -m benchmarks.dnas_search_time              # the budget's threads
    python -m benchmarks.dnas_search_time --threads 1
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import dnas_common as common
from hwnas.dnas import run_dnas
from hwnas.dnas.data import search_batches
from hwnas.io import atomic_write_json
from hwnas.spaces import get_space


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=common.Budget().threads,
                        help="torch threads of the search (default: the budget's)")
    args = parser.parse_args(argv)
    budget, work = common.Budget(threads=args.threads), common.WORK
    warm_start = work / "warmup" / "checkpoint.pt"
    if not warm_start.exists():
        raise SystemExit(f"{warm_start} is missing: run python -m benchmarks.dnas_devices first")
    table = common.local_lut(work)
    torch.set_num_threads(budget.threads)
    weights, theta = search_batches(common.load_data(), per_class=budget.search_per_class,
                                    batch_size=budget.batch_size, seed=budget.seed)
    search_settings = dict(
        warm_start=warm_start, theta_lr=budget.theta_lr, target_form=budget.target_form,
        target_latency=common.reference_target(table, budget),
        theta_estimator=budget.theta_estimator, paths_per_batch=budget.paths_per_batch)
    phases = {"warmup_epoch_s": dict(warmup_epochs=1), "search_epoch_s": search_settings}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, settings in phases.items():
            run_dir = Path(folder) / name
            started = time.perf_counter()
            run_dnas(get_space(common.SPACE), table, weights, theta, epochs=1,
                     weight_lr=common.WEIGHT_LR, seed=budget.seed, run_dir=run_dir,
                     fixed_layers=common.fixed_transitions(budget), num_samples=8, plots=False,
                     **settings)
            seconds[name] = time.perf_counter() - started
            shutil.rmtree(run_dir)
    seconds["warmup_minutes"] = budget.warmup_epochs * seconds["warmup_epoch_s"] / 60
    seconds["search_minutes_after_warmup"] = budget.search_epochs * seconds["search_epoch_s"] / 60
    seconds["search_minutes_from_scratch"] = (seconds["warmup_minutes"]
                                              + seconds["search_minutes_after_warmup"])
    output = {"budget": budget.to_dict(), "machine": common.machine(), **seconds}
    suffix = "" if args.threads == common.Budget().threads else f"_{args.threads}t"
    atomic_write_json(Path(f"benchmarks/results/dnas_search_time{suffix}.json"), output)
    print(output)
    return seconds


if __name__ == "__main__":
    main()
