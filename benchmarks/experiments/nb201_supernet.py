"""Does a CPU-minutes NAS-Bench-201 supernet rank cells as the benchmark's 200-epoch training
does? The ranking diagnostic of issue 15: a supernet of the cells
(:class:`hwnas.dnas.cellwise.CellSuperNet`, one ``theta`` shared by every cell) is warmed up on
CIFAR-10 with sampled paths (``dnas`` section: ``warmup_epochs = epochs``, so theta never moves
and every cell is trained as often), then ``paths`` uniformly random cells are scored on the same
``test_images`` held-out images with BatchNorm on batch statistics
(:func:`hwnas.dnas.diagnostics.path_losses`), and Kendall's tau between their supernet accuracy
and NAS-Bench-201's ``accuracy_column`` is reported, beside the tau of the cells' MFLOPs (a
zero-cost proxy that needs no training) against the same column.

    python -m benchmarks.experiments.nb201_supernet           # minutes; results/nb201_supernet.json
    python -m benchmarks.experiments.nb201_supernet --quick   # smoke run
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.stats import kendalltau

from benchmarks.experiments import common
from hwnas import settings
from hwnas.cost.flops import FlopsCost
from hwnas.data.cifar import load_cifar10
from hwnas.data.tables import nb201_accuracy, nb201_accuracy_columns
from hwnas.dnas.cellwise import CellSuperNet, run_cell_dnas
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
    paths: int = common.required("Random cells scored by the supernet.", minimum=3)
    test_images: int = common.required("Held-out images every cell is scored on.", minimum=10)
    accuracy_column: str = common.required("Column of nb201_accuracy.csv.gz ranked against.")

    def __post_init__(self) -> None:
        check(self)
        if self.accuracy_column not in nb201_accuracy_columns():
            raise HwnasError(f"unknown accuracy column {self.accuracy_column!r} (known: "
                             f"{', '.join(nb201_accuracy_columns())})")


def epoch_progress(epochs: int) -> Callable[[SearchProgress], None]:
    """One line as each warm-up epoch starts."""
    started: set[int] = set()

    def report(progress: SearchProgress) -> None:
        if progress.epoch not in started:
            started.add(progress.epoch)
            print(f"warm-up epoch {progress.epoch + 1}/{epochs} (weight CE {progress.loss:.3f})",
                  flush=True)
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(__doc__.split("\n\n")[0], NAME)
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    loaded = common.load_preset(NAME, {"dnas": SearchSettings, "benchmark": SupernetConfig},
                                quick=arguments.quick, path=arguments.config)[0]
    search, own = loaded["dnas"], loaded["benchmark"]
    if search.warmup_epochs != search.epochs:
        raise HwnasError("the dnas section must warm up only (warmup_epochs = epochs)")
    space, work = NB201Space(), common.WORK / (NAME + ("_quick" if arguments.quick else ""))
    data = load_cifar10()
    warmup = {"dnas": settings.to_dict(search), "channels": own.channels, "cells": own.cells}
    digest = hashlib.blake2b(json.dumps(warmup, sort_keys=True).encode(), digest_size=4)
    run = work / f"warmup-{digest.hexdigest()}"  # one folder per warm-up setting, kept
    if not (run / "result.json").exists():  # a killed warm-up resumes from its checkpoint
        weights, theta = search_batches(data, search)
        run_cell_dnas(FlopsCost(), weights, theta, search, run_dir=run, resume=run.exists(),
                      plots=False, channels=own.channels, cells=own.cells,
                      progress=epoch_progress(search.epochs))
    supernet = CellSuperNet(own.channels, own.cells)
    load_supernet_weights(run / "checkpoint.pt", supernet)
    rng = np.random.default_rng(search.seed)
    cells = space.decisions.sample(own.paths, rng)
    images, labels = fixed_test_images(data, own.test_images, search.seed)
    losses = path_losses(supernet, images, labels, [tuple(int(op) for op in row)
                                                    for row in cells])
    truth = nb201_accuracy(own.accuracy_column)[space.indices(cells)]
    flops = FlopsCost().choice_cost(space)(cells)
    tau = float(kendalltau(losses.accuracy, truth)[0])
    tau_loss = float(kendalltau(-losses.cross_entropy, truth)[0])
    tau_flops = float(kendalltau(flops, truth)[0])
    print(f"{own.paths} random cells: Kendall tau of the supernet's accuracy {tau:.3f} (of its "
          f"-CE {tau_loss:.3f}), of MFLOPs {tau_flops:.3f}, against {own.accuracy_column}")
    output = {"settings": {"dnas": settings.to_dict(search), "benchmark": settings.to_dict(own)},
              "kendall_supernet_accuracy": tau, "kendall_supernet_cross_entropy": tau_loss,
              "kendall_mflops": tau_flops, "warmup_run": str(run),
              "cells": [{"cell": space.format(row), "supernet_accuracy": float(accuracy),
                         "supernet_cross_entropy": float(loss), "table_accuracy": float(true),
                         "mflops": float(cost)}
                        for row, accuracy, loss, true, cost in zip(
                            cells, losses.accuracy, losses.cross_entropy, truth, flops)],
              "machine": common.machine()}
    return common.write_output(arguments.out, NAME, arguments.quick, output, started)


if __name__ == "__main__":
    main()
