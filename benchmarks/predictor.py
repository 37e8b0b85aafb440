"""Kendall tau of ChamNet's GP accuracy predictor on held-out NAS-Bench-201 cells.

Training sets of 25, 50, 100 and 200 cells, chosen at random or by Bayesian optimisation
(uncertainty sampling, :func:`hwnas.predictors.active.select_by_bayesian_optimisation`: the
predictor-building mode of ChamNet's sample selection); test = 2,000 random cells outside the
training set; target ``cifar10_test_200ep`` modelled as ``log(100 - accuracy)`` on
:func:`hwnas.evolution.evaluators.nb201_features` (one-hot + live-path features), also the plain
one-hot encoding for comparison. Median over seeds.

    python -m benchmarks.predictor [--seeds 5] [--quick]  ->  benchmarks/results/predictor.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from hwnas.data.tables import nb201_accuracy
from hwnas.evolution.evaluators import nb201_features
from hwnas.io import atomic_write_json
from hwnas.predictors.active import select_by_bayesian_optimisation
from hwnas.predictors.gp import GaussianProcessPredictor, one_hot_choices
from hwnas.spaces.nb201 import NB201Space

RESULTS = Path(__file__).parent / "results"
COLUMN = "cifar10_test_200ep"


def tau_for(encoding, target, accuracy, size, selection, seed):
    rng = np.random.default_rng(seed)
    if selection == "random":
        train = rng.choice(len(target), size, replace=False)
    else:
        train = select_by_bayesian_optimisation(
            encoding, lambda rows: target[rows], budget=size, rng=rng,
            acquisition="uncertainty", initial=min(10, size), batch_size=max(5, size // 10),
            candidates_per_round=3000,
            predictor_factory=lambda s: GaussianProcessPredictor(seed=s, restarts=0)).indices
    rest = np.setdiff1d(np.arange(len(target)), train)
    test = rng.choice(rest, 2000, replace=False)
    predictor = GaussianProcessPredictor(seed=seed).fit(encoding[train], target[train])
    # the GP predicts log error: minus it ranks like accuracy
    return float(kendalltau(-predictor.predict(encoding[test]), accuracy[test])[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "predictor.json")
    args = parser.parse_args()
    choices = np.asarray(NB201Space().all_choices())
    accuracy = nb201_accuracy(COLUMN)
    target = np.log(100.0 - accuracy)
    encodings = {"features": nb201_features(choices), "one_hot": one_hot_choices(choices, 5)}
    sizes = (25, 50) if args.quick else (25, 50, 100, 200)
    seeds = 1 if args.quick else args.seeds
    results: dict = {"column": COLUMN, "target": "log(100 - accuracy)", "test_cells": 2000,
                     "seeds": seeds, "kendall_tau_median": {}}
    for name, encoding in encodings.items():
        for selection in ("bo", "random"):
            key = f"{name}/{selection}"
            results["kendall_tau_median"][key] = {
                str(size): float(np.median([tau_for(encoding, target, accuracy, size, selection,
                                                    seed) for seed in range(seeds)]))
                for size in sizes}
            print(key, results["kendall_tau_median"][key], flush=True)
    atomic_write_json(args.out, results)


if __name__ == "__main__":
    main()
