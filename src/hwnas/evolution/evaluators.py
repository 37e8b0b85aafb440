"""Evaluators: what "measuring an architecture's accuracy" means for a search, behind one interface.

An evaluator maps a choice matrix ``[N, D]`` of its space to accuracies in percent:

* :meth:`Evaluator.evaluate` is the *search signal* (what the search may look at);
* :meth:`Evaluator.report` is the number to report for a returned architecture (e.g. the NB201
  200-epoch test accuracy when the search looked at 12-epoch validation accuracy), or ``None``.

Two evaluators:

* :class:`NB201Evaluator`: tabular NAS-Bench-201 (Dong & Yang, ICLR 2020). Accuracy from any
  column of ``nb201_accuracy.csv.gz``, and the per-device latency of any column of
  ``nb201_latency.csv.gz`` as a vectorised cost (:meth:`NB201Evaluator.latency_cost`), so a whole
  search runs on real numbers in seconds. Its :meth:`NB201Evaluator.encode` adds cell features to
  the one-hot encoding (see :func:`nb201_features`).
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
from hwnas.predictors.gp import one_hot_choices

logger = logging.getLogger(__name__)

#: input->output paths of the NB201 cell as edge indices (edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3)
NB201_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))
NONE_OP, CONV1, CONV3 = 0, 2, 3


class Evaluator(Protocol):
    name: str

    def evaluate(self, choices: np.ndarray) -> np.ndarray: ...

    def report(self, choices: np.ndarray) -> np.ndarray | None: ...


def nb201_features(choices: np.ndarray) -> np.ndarray:
    """One-hot (6 edges x 5 ops) plus derived cell features, ``[N, 35]``.

    A cell whose output is cut off from its input (a ``none`` on every input->output path)
    scores ~10 % whatever its other ops, which one-hot features express poorly; so five features
    computed over the *live* paths (no ``none`` op on them) are appended, scaled to [0, 2]:
    output connected, live paths / 4, 3x3 convs on live paths / 6, 1x1 convs on live paths / 6,
    and the most convs on one live path / 3. With a GP on these features and the log error
    target, Kendall tau on held-out cells rises from ~0.45 (one-hot) to ~0.7 at 100 training
    cells (``benchmarks/predictor.py``).
    """
    C = np.atleast_2d(np.asarray(choices, dtype=np.int64))
    alive = np.stack([(C[:, list(path)] != NONE_OP).all(axis=1) for path in NB201_PATHS], 1)
    conv3 = np.zeros(len(C))
    conv1 = np.zeros(len(C))
    depth = np.zeros(len(C))
    for k, path in enumerate(NB201_PATHS):
        ops = C[:, list(path)]
        threes, ones = (ops == CONV3).sum(1), (ops == CONV1).sum(1)
        conv3 += alive[:, k] * threes
        conv1 += alive[:, k] * ones
        depth = np.maximum(depth, alive[:, k] * (threes + ones))
    extra = np.stack([alive.any(1), alive.sum(1) / 4, conv3 / 6, conv1 / 6, depth / 3], axis=1)
    return np.hstack([one_hot_choices(C, 5), 2.0 * extra])


class NB201Evaluator:
    """Tabular NAS-Bench-201 accuracy (search column, report column) and device latencies."""

    def __init__(self, search_column: str = "cifar10_test_200ep", *,
                 report_column: str | None = None, data_dir: str | Path | None = None) -> None:
        from hwnas.data.tables import load_nb201_accuracy
        from hwnas.spaces.nb201 import NB201Space

        self.space = NB201Space()
        self.data_dir = data_dir
        table = load_nb201_accuracy(data_dir)
        self.search_column = search_column
        self.report_column = report_column or search_column
        self._search = table.column(search_column)
        self._report = table.column(self.report_column)
        all_choices = np.asarray(self.space.all_choices(data_dir))
        self._index = np.empty(5**6, dtype=np.int64)  # base-5 code -> NB201 index
        self._index[self.code(all_choices)] = np.arange(len(all_choices))
        self.name = f"nb201:{search_column}"

    @staticmethod
    def code(choices: np.ndarray) -> np.ndarray:
        C = np.atleast_2d(np.asarray(choices, dtype=np.int64))
        return C @ (5 ** np.arange(5, -1, -1))

    def indices(self, choices: np.ndarray) -> np.ndarray:
        """NB201 index (table row) of every row of ``choices``."""
        C = np.atleast_2d(np.asarray(choices, dtype=np.int64))
        if C.shape[1] != 6 or (C < 0).any() or (C > 4).any():
            raise HwnasError(f"NB201 choices must be [N, 6] op indices in 0..4, got {C.shape}")
        return self._index[self.code(C)]

    def evaluate(self, choices: np.ndarray) -> np.ndarray:
        return self._search[self.indices(choices)].astype(float)

    def report(self, choices: np.ndarray) -> np.ndarray:
        return self._report[self.indices(choices)].astype(float)

    def encode(self, choices: np.ndarray) -> np.ndarray:
        return nb201_features(choices)

    def latency_cost(self, column: str) -> Any:
        """Vectorised latency (ms) of one device column of ``nb201_latency.csv.gz``."""
        from hwnas.data.tables import nb201_latency

        values = nb201_latency(column, self.data_dir)
        evaluator = self

        def latency(choices: np.ndarray) -> np.ndarray:
            return values[evaluator.indices(choices)]

        latency.name = column  # type: ignore[attr-defined]
        latency.unit = "ms"  # type: ignore[attr-defined]
        return latency

    def best_feasible(self, feasible: np.ndarray) -> float:
        """Best report-column accuracy over the NB201 rows where ``feasible`` ([15625] bool)."""
        return float(self._report[feasible].max())


class CifarTrainingEvaluator:
    """Short CIFAR-10 training of each architecture; returns validation top-1 (%).

    ``data`` is a :class:`hwnas.data.cifar.CifarArrays` whose *train* split is divided into
    ``train_per_class`` training and ``valid_per_class`` validation images per class (seeded);
    the test split is not used. Each architecture trains in ``run_dir/<hash of arch>`` with the
    :class:`hwnas.train.recipe.TrainRecipe`; a finished run is read back, not retrained.
    """

    def __init__(self, space: Any, data: Any, recipe: Any, run_dir: str | Path, *,
                 train_per_class: int = 100, valid_per_class: int = 50, seed: int = 0,
                 threads: int | None = None) -> None:
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
        self.space, self.recipe, self.threads = space, recipe, threads
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
            outcome = train(arch, self.data, self.recipe, folder, resume=True,
                            threads=self.threads)
            logger.info("trained %s: %.2f %%", folder.name, outcome.final_top1)
            results.append(float(outcome.final_top1))
        return np.array(results)

    def report(self, choices: np.ndarray) -> None:
        return None
