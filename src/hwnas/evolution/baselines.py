"""Baselines on ChamNet's interface: random search and regularized evolution, budget-aware.

Both take the same ``(space, evaluator, budget)`` as :func:`hwnas.evolution.chamnet.run_chamnet`,
evaluate only feasible architectures (never the same one twice), and return every evaluation in
order, so a run with ``evaluations = N`` also answers every ``n < N`` as a prefix.

* Random search: uniformly random feasible architectures (bounded resampling:
  :func:`hwnas.evolution.ga.sample_feasible`).
* Regularized evolution (Real et al., AAAI 2019, Algorithm 1): a queue of ``population``
  evaluated architectures, initially random; each cycle samples ``sample_size`` of them, mutates
  the best of the sample (the tournament winner) and evaluates the child, appends it and removes
  the *oldest* (aging). Constraint-aware: a mutant outside the budget (or already evaluated) is
  re-mutated at most ``max_attempts`` times, then a random feasible architecture is used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hwnas.cost.budget import Budget, make_budgets
from hwnas.errors import HwnasError
from hwnas.evolution.ga import sample_feasible


@dataclass(frozen=True)
class BaselineResult:
    """Evaluations in order (choices, search accuracy, report accuracy) and the best one."""

    method: str
    choices: np.ndarray
    accuracy: np.ndarray
    report: np.ndarray | None
    seconds: float

    def best_within(self, count: int) -> int:
        """Row of the best search accuracy among the first ``count`` evaluations."""
        return int(np.argmax(self.accuracy[:count]))

    @property
    def best_index(self) -> int:
        return self.best_within(len(self.accuracy))


def _single_budget(budget: Any, space: Any) -> Budget:
    """One budget: a Budget, a (cost, limit) pair, or a list of pairs that must all hold."""
    return make_budgets([budget], space)[0]


def _evaluate(evaluator: Any, choices: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    values = np.asarray(evaluator.evaluate(choices), dtype=float)
    report = evaluator.report(choices)
    return values, None if report is None else np.asarray(report, dtype=float)


def random_search(space: Any, evaluator: Any, budget: Any, *, evaluations: int,
                  seed: int = 0, max_rounds: int = 50) -> BaselineResult:
    """``evaluations`` distinct uniformly random feasible architectures."""
    started = time.perf_counter()
    budget = _single_budget(budget, space)
    rng = np.random.default_rng(seed)
    choices = sample_feasible(space.decisions, budget, evaluations, rng, rounds=max_rounds)
    values, report = _evaluate(evaluator, choices)
    return BaselineResult("random", choices, values, report, time.perf_counter() - started)


def regularized_evolution(space: Any, evaluator: Any, budget: Any, *, evaluations: int,
                          population: int = 20, sample_size: int = 5, seed: int = 0,
                          max_attempts: int = 20, max_rounds: int = 50) -> BaselineResult:
    """Real et al. (2019) aging evolution under a hard budget (module docstring)."""
    for name, value, minimum in (("population", population, 2), ("sample_size", sample_size, 1),
                                 ("evaluations", evaluations, 1),
                                 ("max_attempts", max_attempts, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise HwnasError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if sample_size > population:
        raise HwnasError(f"sample_size {sample_size} exceeds population {population}")
    started = time.perf_counter()
    budget = _single_budget(budget, space)
    rng = np.random.default_rng(seed)
    decisions = space.decisions
    rate = 1.0 / max(1, decisions.searchable)
    first = sample_feasible(decisions, budget, min(population, evaluations), rng,
                            rounds=max_rounds)
    values, reports = _evaluate(evaluator, first)
    history = [first]
    accuracy, report = [values], [reports]
    seen = {row.tobytes() for row in first}
    queue = list(range(len(first)))  # rows of the concatenated history, oldest first
    all_choices, all_values = first, values
    while len(all_values) < evaluations:
        sample = rng.choice(queue, size=min(sample_size, len(queue)), replace=False)
        parent = all_choices[sample[np.argmax(all_values[sample])]]
        child = None
        for _ in range(max_attempts):
            mutant = decisions.mutate(parent[None, :], np.array([rate]), rng)
            if (mutant == parent).all():  # force at least one change
                continue
            if mutant[0].tobytes() not in seen and budget.feasible(mutant)[0]:
                child = mutant
                break
        if child is None:
            child = sample_feasible(decisions, budget, 1, rng, rounds=max_rounds,
                                    exclude=seen)
        values, reports = _evaluate(evaluator, child)
        seen.add(child[0].tobytes())
        history.append(child)
        accuracy.append(values)
        report.append(reports)
        all_choices = np.concatenate([all_choices, child])
        all_values = np.concatenate([all_values, values])
        queue.append(len(all_values) - 1)
        queue.pop(0)  # aging: the oldest dies, not the worst
    reports_all = None if report[0] is None else np.concatenate(report)
    return BaselineResult("rea", all_choices, all_values, reports_all,
                          time.perf_counter() - started)


def run_baseline(method: str, space: Any, evaluator: Any, budget: Any, *, evaluations: int,
                 seed: int = 0, **options: Any) -> BaselineResult:
    """``method`` is ``"random"`` or ``"rea"``."""
    if method == "random":
        return random_search(space, evaluator, budget, evaluations=evaluations, seed=seed,
                             **options)
    if method == "rea":
        return regularized_evolution(space, evaluator, budget, evaluations=evaluations,
                                     seed=seed, **options)
    raise HwnasError(f"unknown baseline {method!r} (known: random, rea)")


__all__: Sequence[str] = ("BaselineResult", "random_search", "regularized_evolution",
                          "run_baseline")
