"""Kendall tau of ChamNet's GP accuracy predictor on held-out NAS-Bench-201 cells (model-based
predictors reach about 0.5-0.55 at 100 training cells in White et al., 2021).

Method: training sets of the preset's sizes, chosen at random or by Bayesian optimisation
(uncertainty sampling, :func:`hwnas.predictors.active.select_by_bayesian_optimisation`: the
predictor-building mode of ChamNet's sample selection; ``bo_initial`` random cells, then batches
of ``max(bo_batch_minimum, N // bo_batches)``, each round scoring ``bo_candidates`` cells with a
GP without restarts); test = ``test_cells`` random cells outside the training set; target the
``column`` modelled as ``log(100 - accuracy)`` on the space's features
(:meth:`hwnas.spaces.nb201.NB201Space.encode`: one-hot + live-path features), and on the plain
one-hot encoding for comparison. Median over seeds. Settings:
``configs/benchmarks/predictor.yaml``. Run (about 2 minutes)::

    python -m benchmarks.experiments.predictor           # -> benchmarks/results/predictor.json
    python -m benchmarks.experiments.predictor --quick
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import kendalltau

from benchmarks.experiments import common
from hwnas.data.tables import nb201_accuracy
from hwnas.predictors.active import select_by_bayesian_optimisation
from hwnas.predictors.gp import GaussianProcessPredictor
from hwnas.settings import check
from hwnas.spaces.nb201 import NB201Space

NAME = "predictor"


@dataclass(frozen=True, kw_only=True)
class PredictorConfig:
    """The ``benchmark`` section of ``configs/benchmarks/predictor.yaml``."""

    column: str = common.required("NB201 accuracy column predicted (as log(100 - accuracy)).")
    sizes: tuple[int, ...] = common.required("Training-set sizes.")
    seeds: int = common.required("Seeds (0..seeds-1) per size and selection.", minimum=1)
    test_cells: int = common.required("Held-out test cells.", minimum=2)
    bo_initial: int = common.required("Random cells before the first BO batch.", minimum=1)
    bo_batch_minimum: int = common.required("Smallest BO batch.", minimum=1)
    bo_batches: int = common.required("A BO batch is N // this (at least the minimum).",
                                      minimum=1)
    bo_candidates: int = common.required("Cells scored per BO round.", minimum=1)

    def __post_init__(self) -> None:
        check(self)


def tau_for(encoding: np.ndarray, target: np.ndarray, accuracy: np.ndarray, size: int,
            selection: str, seed: int, own: PredictorConfig) -> float:
    """Kendall tau of the GP mean against accuracy on held-out cells, for one training set."""
    rng = np.random.default_rng(seed)
    if selection == "random":
        train = rng.choice(len(target), size, replace=False)
    else:
        train = select_by_bayesian_optimisation(
            encoding, lambda rows: target[rows], budget=size, rng=rng,
            acquisition="uncertainty", initial=min(own.bo_initial, size),
            batch_size=max(own.bo_batch_minimum, size // own.bo_batches),
            candidates_per_round=own.bo_candidates,
            predictor_factory=lambda s: GaussianProcessPredictor(seed=s, restarts=0)).indices
    rest = np.setdiff1d(np.arange(len(target)), train)
    test = rng.choice(rest, own.test_cells, replace=False)
    predictor = GaussianProcessPredictor(seed=seed).fit(encoding[train], target[train])
    # the GP predicts log error: minus it ranks like accuracy
    return float(kendalltau(-predictor.predict(encoding[test]), accuracy[test])[0])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    arguments = common.parser(__doc__.split("\n\n")[0], NAME).parse_args(argv)
    loaded, _ = common.load_preset(NAME, {"benchmark": PredictorConfig}, quick=arguments.quick,
                                   path=arguments.config)
    own = loaded["benchmark"]
    space = NB201Space()
    choices = np.asarray(space.all_choices())
    accuracy = nb201_accuracy(own.column)
    target = np.log(100.0 - accuracy)
    encodings = {"features": space.encode(choices), "one_hot": space.decisions.one_hot(choices)}
    results: dict[str, Any] = {"column": own.column, "target": "log(100 - accuracy)",
                               "test_cells": own.test_cells, "seeds": own.seeds,
                               "kendall_tau_median": {}}
    for name, encoding in encodings.items():
        for selection in ("bo", "random"):
            key = f"{name}/{selection}"
            results["kendall_tau_median"][key] = {
                str(size): float(np.median([tau_for(encoding, target, accuracy, size, selection,
                                                    seed, own) for seed in range(own.seeds)]))
                for size in own.sizes}
            print(key, results["kendall_tau_median"][key], flush=True)
    return common.write_output(arguments.out, NAME, arguments.quick, results)


if __name__ == "__main__":
    common.run(main)
