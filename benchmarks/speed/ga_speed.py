"""Speed of the vectorised GA: candidates scored per second and a full constrained search.

Scoring = GP accuracy predictor (posterior mean on the encoding, the GA's fitness; the rate with
the std as well, which acquisitions need, is recorded beside it; fitted on 100 random
architectures with synthetic targets: speed only) + an additive per-layer cost, one vectorised
call for a ``[P, D]`` choice matrix. Spaces:

* ``chamnet`` (ImageNet setting, encoded as scaled option values): the cost is
  :class:`hwnas.cost.flops.FlopsCost` through its ``choice_cost(space)``, i.e. the space's
  per-group table (``space.layer_sums(price)``), standing in for a LUT: no measured ChamNet LUT
  exists on this machine and the table look-up is the same code for a LUT
  (``LatencyTable.choice_cost(space)`` is ``space.layer_sums`` of the table's layer price);
* ``fbnet-cifar100`` (one-hot encoded): the HW-NAS-Bench pixel3 device table
  (``DeviceTable.choice_cost(space)``, a sum of table rows).

A full search = :func:`hwnas.evolution.ga.adaptive_ga` maximising the predicted accuracy under a
cost budget at the median cost of random architectures (population 100, 100 generations).

    python -m benchmarks.speed.ga_speed           ->   benchmarks/results/ga_speed.json
    python -m benchmarks.speed.ga_speed --quick   ->   benchmarks/results/ga_speed_quick.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.cost.base import ChoiceCost
from hwnas.cost.budget import Budget, Constraint
from hwnas.cost.device_table import load_device_table
from hwnas.cost.flops import FlopsCost
from hwnas.evolution.config import GAConfig
from hwnas.evolution.ga import adaptive_ga
from hwnas.io import atomic_write_json
from hwnas.predictors.gp import GaussianProcessPredictor
from hwnas.spaces import get_space

RESULTS = Path(__file__).parents[1] / "results"


def setting(name: str) -> tuple[Any, ChoiceCost, str]:
    """The space, its vectorised cost and the cost's label in the output."""
    space = get_space(name)
    if name == "chamnet":
        return space, FlopsCost().choice_cost(space), "MFLOPs"
    return space, load_device_table("pixel3").choice_cost(space), "ms (pixel3)"


def measure(name: str, population: int, generations: int, batch: int) -> dict:
    space, cost, unit = setting(name)
    decisions, encode = space.decisions, space.encode
    rng = np.random.default_rng(0)
    train = decisions.sample(100, rng)
    target = np.log(cost(train)) + 0.1 * rng.standard_normal(100)  # synthetic: speed only
    predictor = GaussianProcessPredictor(seed=0).fit(encode(train), target)

    def score(choices: np.ndarray) -> np.ndarray:
        """ChamNet's GA fitness: the predicted accuracy (GP posterior mean)."""
        return predictor.posterior_mean(encode(choices))

    def score_with_std(choices: np.ndarray) -> np.ndarray:
        """What an acquisition such as expected improvement needs: mean and std."""
        mean, std = predictor.model_posterior(encode(choices))
        return mean + std

    candidates = decisions.sample(batch, rng)
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
    limit = float(np.median(cost(decisions.sample(2000, rng))))
    budget = Budget((Constraint(cost, limit),))
    started = time.perf_counter()
    result = adaptive_ga(decisions, score, [budget], rng=np.random.default_rng(1),
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
    parser.add_argument("--out", type=Path, default=None,
                        help="output file (default: benchmarks/results/ga_speed.json, "
                             "ga_speed_quick.json with --quick)")
    args = parser.parse_args()
    out = args.out or RESULTS / ("ga_speed_quick.json" if args.quick else "ga_speed.json")
    population, generations, batch = (20, 5, 2000) if args.quick else (100, 100, 100_000)
    results = [measure(name, population, generations, batch)
               for name in ("chamnet", "fbnet-cifar100")]
    for row in results:
        print(f"{row['space']}: {row['candidates_scored_per_second']:.0f} candidates/s, "
              f"search {row['search_seconds']:.2f} s ({row['search_candidates_scored']} scored)")
    atomic_write_json(out, {"results": results, "quick": args.quick})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
