"""How long does one search of the DNAS experiments take on this machine, alone?

Method: one whole search from scratch as ``dnas_devices`` and ``dnas_quality`` run theirs
(``configs/benchmarks/dnas.yaml``), in a temporary folder: the weights-only warm-up
(:func:`common.warmup_config`) and then the search for this CPU's LUT from the warm-up's
checkpoint, with the preset's thread count (or ``--threads``). Every epoch's seconds come from
the runs' ``history.jsonl`` (the first epoch of each run is slower: oneDNN creates its kernels
for every candidate's shapes). Reads the LUT from the DNAS work folder (building it there if it
is missing). Writes ``benchmarks/results/dnas_search_time.json``
(``dnas_search_time_<n>t.json`` for another thread count than the preset's), against the limit
of ``configs/benchmarks/dnas_search_time.yaml``. Run alone::

    python -m benchmarks.experiments.dnas_search_time              # the preset's 2 threads
    python -m benchmarks.experiments.dnas_search_time --threads 1
    python -m benchmarks.experiments.dnas_search_time --quick      # smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.experiments import common
from hwnas import settings
from hwnas.cost.lut import LatencyTable
from hwnas.data.cifar import CifarArrays
from hwnas.dnas.data import search_batches
from hwnas.dnas.layerwise import run_dnas
from hwnas.runs import RunFolder
from hwnas.settings import check

NAME = "dnas_search_time"


@dataclass(frozen=True, kw_only=True)
class SearchTimeConfig:
    """The ``benchmark`` section of ``configs/benchmarks/dnas_search_time.yaml``."""

    limit_minutes: float = common.required("Target: a search from scratch within this time.",
                                           minimum=0)

    def __post_init__(self) -> None:
        check(self)


def timed_search(budget: common.DnasSettings, table: LatencyTable, data: CifarArrays,
                 folder: Path) -> dict[str, Any]:
    """Warm-up then search, from scratch in ``folder``; wall seconds of each and of each
    epoch."""
    warmup = common.warmup_config(budget, common.Variant())
    phases = {"warmup": warmup,
              "search": settings.replace(
                  budget.dnas, warm_start=str(folder / "warmup" / "checkpoint.pt"),
                  target_latency=common.reference_target(table, budget))}
    timings: dict[str, Any] = {}
    for name, config in phases.items():
        weights, theta = search_batches(data, config)
        started = time.perf_counter()
        run_dnas(budget.space, table, weights, theta, config, run_dir=folder / name,
                 plots=False)
        timings[f"{name}_s"] = time.perf_counter() - started
        history = RunFolder(folder / name, "dnas").read_history()
        timings[f"{name}_epoch_s"] = [row["seconds"] for row in history]
    return timings


def main(argv: list[str] | None = None) -> dict[str, Any]:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--threads", type=int, default=None,
                            help="torch threads of the search (default: the preset's)")

    arguments, budget, work = common.dnas_arguments(__doc__.split("\n\n")[0], NAME, argv,
                                                    options)
    loaded, _ = common.load_preset(NAME, {"benchmark": SearchTimeConfig},
                                   quick=arguments.quick, path=arguments.config)
    own, preset_threads = loaded["benchmark"], budget.dnas.threads
    if arguments.threads is not None:
        budget = dataclasses.replace(
            budget, dnas=settings.replace(budget.dnas, threads=arguments.threads))
    table = common.local_lut(budget, work)
    data = common.load_data()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        timings = timed_search(budget, table, data, Path(folder))
    minutes = (timings["warmup_s"] + timings["search_s"]) / 60
    output = {"settings": {**budget.to_dict(), NAME: settings.to_dict(own)},
              "machine": common.machine(), **timings,
              "search_minutes_from_scratch": minutes,
              "search_minutes_after_warmup": timings["search_s"] / 60,
              "limit_minutes": own.limit_minutes, "within_limit": minutes <= own.limit_minutes}
    threads = budget.dnas.threads
    print(f"{threads} thread(s): warm-up {timings['warmup_s'] / 60:.1f} min + search "
          f"{timings['search_s'] / 60:.1f} min = {minutes:.1f} min from scratch")
    name = NAME if threads == preset_threads else f"{NAME}_{threads}t"
    return common.write_output(arguments.out, name, arguments.quick, output, started)


if __name__ == "__main__":
    common.run(main)
