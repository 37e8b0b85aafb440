"""How long does one search of the DNAS benchmarks take on this machine, alone?

Runs one whole search from scratch as ``dnas_devices`` and ``dnas_quality`` run theirs, in a
temporary folder: the weights-only warm-up (``warmup_epochs``) and then the search for this
CPU's LUT (``search_epochs``, from the warm-up's checkpoint), with ``dnas_common.Budget``'s
settings and thread count. Every epoch's seconds come from the runs' ``history.jsonl`` (the
first epoch of each run is slower: oneDNN creates its kernels for every candidate's shapes).
Needs the LUT in the work folder (``dnas_devices`` or ``dnas_quality`` builds it). Writes
``benchmarks/results/dnas_search_time.json`` (``dnas_search_time_<n>t.json`` for another thread
count than the budget's). Run alone::

    python -m benchmarks.dnas_search_time              # the budget's 2 threads, ~15 min
    python -m benchmarks.dnas_search_time --threads 1  # ~24 min
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import dnas_common as common
from hwnas.dnas import run_dnas
from hwnas.dnas.data import search_batches
from hwnas.io import atomic_write_json
from hwnas.spaces import get_space

#: the acceptance limit of issue 4: every search of the benchmarks within 20 minutes
LIMIT_MINUTES = 20.0


def timed_search(budget: common.Budget, folder: Path) -> dict[str, Any]:
    """Warm-up then search, from scratch; wall seconds of each and of each epoch."""
    table = common.local_lut(common.WORK)
    torch.set_num_threads(budget.threads)
    weights, theta = search_batches(common.load_data(), per_class=budget.search_per_class,
                                    batch_size=budget.batch_size, seed=budget.seed)
    common_settings = dict(weight_lr=common.WEIGHT_LR, seed=budget.seed, num_samples=8,
                           fixed_layers=common.fixed_transitions(budget), plots=False,
                           checkpoint_every=max(1, len(weights) // 2))
    phases = {
        "warmup": dict(epochs=budget.warmup_epochs, warmup_epochs=budget.warmup_epochs),
        "search": dict(epochs=budget.search_epochs, warm_start=folder / "warmup" / "checkpoint.pt",
                       theta_lr=budget.theta_lr, target_form=budget.target_form,
                       target_latency=common.reference_target(table, budget),
                       theta_estimator=budget.theta_estimator,
                       paths_per_batch=budget.paths_per_batch),
    }
    timings: dict[str, Any] = {}
    for name, settings in phases.items():
        started = time.perf_counter()
        run_dnas(get_space(common.SPACE), table, weights, theta, run_dir=folder / name,
                 **common_settings, **settings)
        timings[f"{name}_s"] = time.perf_counter() - started
        history = (folder / name / "history.jsonl").read_text().splitlines()
        timings[f"{name}_epoch_s"] = [json.loads(line)["seconds"] for line in history]
    return timings


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=common.Budget().threads,
                        help="torch threads of the search (default: the budget's)")
    args = parser.parse_args(argv)
    budget = common.Budget(threads=args.threads)
    with tempfile.TemporaryDirectory() as folder:
        timings = timed_search(budget, Path(folder))
    minutes = (timings["warmup_s"] + timings["search_s"]) / 60
    output = {"budget": budget.to_dict(), "machine": common.machine(), **timings,
              "search_minutes_from_scratch": minutes,
              "search_minutes_after_warmup": timings["search_s"] / 60,
              "limit_minutes": LIMIT_MINUTES, "within_limit": minutes <= LIMIT_MINUTES}
    suffix = "" if args.threads == common.Budget().threads else f"_{args.threads}t"
    atomic_write_json(Path(f"benchmarks/results/dnas_search_time{suffix}.json"), output)
    print(f"{args.threads} thread(s): warm-up {timings['warmup_s'] / 60:.1f} min + search "
          f"{timings['search_s'] / 60:.1f} min = {minutes:.1f} min from scratch")
    return output


if __name__ == "__main__":
    main()
