"""Speed of the vectorised GA: candidates scored per second and a full constrained search.

Scoring = GP accuracy predictor (posterior mean on the encoding, the GA's fitness; the rate with
the std as well, which acquisitions need, is recorded beside it; fitted on 100 random
architectures with synthetic targets: speed only) + an additive per-layer cost, one vectorised
call for a ``[P, D]`` choice matrix. Spaces:

* ``chamnet`` (ImageNet setting): the cost is :class:`hwnas.cost.flops.FlopsCost` through the
  per-group table (:class:`hwnas.evolution.costs.GroupCostTable`), standing in for a LUT: no
  measured ChamNet LUT exists on this machine and the table look-up is the same code for a LUT
  (``GroupCostTable`` over ``LatencyTable.latency``);
* ``fbnet-cifar100``: the HW-NAS-Bench pixel3 device table (``costs_choices``).

A full search = :func:`hwnas.evolution.ga.adaptive_ga` maximising the predicted accuracy under a
cost budget at the median cost of random architectures (population 100, 100 generations).

    python -m benchmarks.ga_speed [--quick]   ->   benchmarks/results/ga_speed.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from hwnas.cost.device_table import load_device_table
from hwnas.cost.flops import FlopsCost
from hwnas.evolution.costs import Budget, Constraint, vectorised_cost
from hwnas.evolution.ga import GAConfig, adaptive_ga, cardinalities_of, random_choices
from hwnas.io import atomic_write_json
from hwnas.predictors.gp import GaussianProcessPredictor, one_hot_choices
from hwnas.spaces import get_space

RESULTS = Path(__file__).parent / "results"


def setting(name: str):
    space = get_space(name)
    if name == "chamnet":
        return space, vectorised_cost(FlopsCost(), space), space.encode_many, "MFLOPs"
    table = load_device_table("pixel3")
    return space, vectorised_cost(table, space), \
        (lambda c: one_hot_choices(np.asarray(c), space.num_candidates)), "ms (pixel3)"


def measure(name: str, population: int, generations: int, batch: int) -> dict:
    space, cost, encode, unit = setting(name)
    rng = np.random.default_rng(0)
    cardinalities = cardinalities_of(space)
    train = random_choices(cardinalities, 100, rng)
    target = np.log(cost(train)) + 0.1 * rng.standard_normal(100)  # synthetic: speed only
    predictor = GaussianProcessPredictor(seed=0).fit(encode(train), target)

    def score(choices: np.ndarray) -> np.ndarray:
        """ChamNet's GA fitness: the predicted accuracy (GP posterior mean)."""
        return predictor.posterior_mean(encode(choices))

    def score_with_std(choices: np.ndarray) -> np.ndarray:
        """What an acquisition such as expected improvement needs: mean and std."""
        mean, std = predictor.model_posterior(encode(choices))
        return mean + std

    candidates = random_choices(cardinalities, batch, rng)
    rates = {}
    for label, scorer in (("mean", score), ("mean_and_std", score_with_std)):
        seconds = []
        for _ in range(3):  # median of 3: the first large call also pays memory allocation
            started = time.perf_counter()
            scorer(candidates)
            cost(candidates)
            seconds.append(time.perf_counter() - started)
        rates[label] = batch / float(np.median(seconds))
    per_second = rates["mean"]
    limit = float(np.median(cost(random_choices(cardinalities, 2000, rng))))
    budget = Budget((Constraint(cost, limit, "cost", unit),))
    started = time.perf_counter()
    result = adaptive_ga(cardinalities, score, [budget], rng=np.random.default_rng(1),
                         config=GAConfig(population=population, generations=generations))
    search_seconds = time.perf_counter() - started
    return {"space": name, "cost": unit, "candidates_scored_per_second": per_second,
            "candidates_scored_per_second_with_std": rates["mean_and_std"],
            "scored_batch": batch, "search_seconds": search_seconds,
            "search_candidates_scored": result.scored, "population": population,
            "generations": generations, "budget": limit,
            "best_cost": float(cost(result.best_choices[0][None, :])[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "ga_speed.json")
    args = parser.parse_args()
    population, generations, batch = (20, 5, 2000) if args.quick else (100, 100, 100_000)
    results = [measure(name, population, generations, batch)
               for name in ("chamnet", "fbnet-cifar100")]
    for row in results:
        print(f"{row['space']}: {row['candidates_scored_per_second']:.0f} candidates/s, "
              f"search {row['search_seconds']:.2f} s ({row['search_candidates_scored']} scored)")
    atomic_write_json(args.out, {"results": results, "quick": args.quick})


if __name__ == "__main__":
    main()
