"""Evaluators: what "measuring an architecture's accuracy" means for a search, behind one interface.

An evaluator maps a choice matrix ``[N, D]`` of its space to accuracies in percent:

* :meth:`Evaluator.evaluate` is the *search signal* (what the search may look at);
* :meth:`Evaluator.report` is the number to report for a returned architecture (e.g. the NB201
  200-epoch test accuracy when the search looked at 12-epoch validation accuracy), or ``None``.

Two evaluators:

* :class:`NB201Evaluator`: tabular NAS-Bench-201 (Dong & Yang, ICLR 2020), accuracy from any
  column of ``nb201_accuracy.csv.gz``; with the device columns of ``nb201_latency.csv.gz`` as
  cost models (:class:`hwnas.cost.device_table.NB201Latency`) a whole search runs on real
  numbers in seconds.
* :class:`CifarTrainingEvaluator`: trains each architecture briefly on a CIFAR-10 subset with
  :func:`hwnas.train.loop.train` and returns its top-1 on a validation split carved from the
  training images (never the test split), one run directory per architecture.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hwnas.errors import HwnasError

logger = logging.getLogger(__name__)

class Evaluator(Protocol):
    name: str

    def evaluate(self, choices: np.ndarray) -> np.ndarray: ...

    def report(self, choices: np.ndarray) -> np.ndarray | None: ...


class NB201Evaluator:
    """Tabular NAS-Bench-201 accuracy: a search column and a report column."""

    def __init__(self, search_column: str = "cifar10_test_200ep", *,
                 report_column: str | None = None, data_dir: str | Path | None = None) -> None:
        from hwnas.data.tables import load_nb201_accuracy, load_nb201_latency
        from hwnas.spaces.nb201 import NB201Space

        self.space, self.data_dir = NB201Space(), data_dir
        table = load_nb201_accuracy(data_dir)
        if table.keys != load_nb201_latency(data_dir).keys:
            raise HwnasError(f"{table.source.name}: its rows are not in the order of "
                             f"nb201_latency.csv.gz (the NB201 index)")
        self.search_column = search_column
        self.report_column = report_column or search_column
        self._search = table.column(search_column)
        self._report = table.column(self.report_column)
        self.name = f"nb201:{search_column}"

    def indices(self, choices: np.ndarray) -> np.ndarray:
        """NB201 index (table row) of every row of ``choices``."""
        return self.space.indices(choices, self.data_dir)

    def evaluate(self, choices: np.ndarray) -> np.ndarray:
        return self._search[self.indices(choices)].astype(float)

    def report(self, choices: np.ndarray) -> np.ndarray:
        return self._report[self.indices(choices)].astype(float)

    def best_feasible(self, feasible: np.ndarray) -> float:
        """Best report-column accuracy over the NB201 rows where ``feasible`` ([15625] bool)."""
        return float(self._report[feasible].max())


class CifarTrainingEvaluator:
    """Short CIFAR-10 training of each architecture; returns validation top-1 (%).

    ``data`` is a :class:`hwnas.data.cifar.CifarArrays` whose *train* split is divided into
    ``train_per_class`` training and ``valid_per_class`` validation images per class (seeded);
    the test split is not used. Each architecture trains in ``run_dir/<hash of arch>`` with the
    :class:`hwnas.train.recipe.TrainRecipe` (its ``threads`` included); a finished run is read
    back, not retrained, an interrupted one resumed.
    """

    def __init__(self, space: Any, data: Any, recipe: Any, run_dir: str | Path, *,
                 train_per_class: int = 100, valid_per_class: int = 50, seed: int = 0) -> None:
        from hwnas.data.cifar import CifarArrays, balanced_subset

        for name, value in (("train_per_class", train_per_class),
                            ("valid_per_class", valid_per_class)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise HwnasError(f"{name} must be a positive integer, got {value!r}")
        rng = np.random.default_rng(seed)
        chosen = balanced_subset(data.train_y, train_per_class + valid_per_class, rng)
        labels = data.train_y[chosen]
        valid_mask = np.zeros(len(chosen), dtype=bool)
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            valid_mask[rng.choice(members, valid_per_class, replace=False)] = True
        train, valid = chosen[~valid_mask], chosen[valid_mask]
        self.data = CifarArrays(data.train_x[train], data.train_y[train], data.train_x[valid],
                                data.train_y[valid], data.class_names, f"{data.source} (split)")
        self.space, self.recipe = space, recipe
        self.run_dir = Path(run_dir)
        self.name = f"cifar10:{train_per_class}x10 train, {valid_per_class}x10 valid"

    def _run_dir(self, arch_string: str) -> Path:
        digest = hashlib.blake2b(arch_string.encode(), digest_size=8).hexdigest()
        return self.run_dir / digest

    def evaluate(self, choices: np.ndarray) -> np.ndarray:
        from hwnas.io import read_json
        from hwnas.train.loop import train

        results = []
        for row in np.atleast_2d(np.asarray(choices)):
            arch = self.space.to_arch(row)
            folder = self._run_dir(arch.to_string())
            if (folder / "result.json").exists():
                results.append(float(read_json(folder / "result.json", "result")["final_top1"]))
                continue
            outcome = train(arch, self.data, self.recipe, folder,
                            resume=(folder / "config.json").exists())
            logger.info("trained %s: %.2f %%", folder.name, outcome.final_top1)
            results.append(float(outcome.final_top1))
        return np.array(results)

    def report(self, choices: np.ndarray) -> None:
        return None
