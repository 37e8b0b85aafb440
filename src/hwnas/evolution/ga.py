"""Adaptive genetic algorithm over integer choice matrices, with hard resource budgets.

ChamNet (Dai et al., CVPR 2019, Sec. 3.3) searches with an "adaptive genetic algorithm" whose
details are not public. This one adapts its crossover and mutation probabilities per individual
as in Srinivas & Patnaik (IEEE Trans. SMC 24(4), 1994), "Adaptive probabilities of crossover and
mutation in genetic algorithms": with ``f_max`` and ``f_avg`` the population's best and mean
fitness (maximised),

    pc = k1 (f_max - f') / (f_max - f_avg)   if f' >= f_avg,   else k3
    pm = k2 (f_max - f)  / (f_max - f_avg)   if f  >= f_avg,   else k4

where ``f'`` is the better parent's fitness and ``f`` the fitness of the individual to mutate
(``pm`` is a per-gene probability). Why: good solutions are protected (the best gets pc = pm = 0),
below-average ones are disrupted (k3 = 1, k4 = 0.5 by the paper's recommendation), and when the
population converges (``f_max - f_avg -> 0``) the rates of above-average individuals rise, which
pushes it out of the local optimum. On top of that, a stagnation term: after ``patience``
generations without a better best, the per-gene mutation floor doubles (up to 0.5) and resets on
improvement, so a collapsed population keeps exploring. Survivor selection is elitist
(mu + lambda): parents and children together, duplicates removed, the best ``population`` kept.

Budgets are hard constraints. Initial individuals are sampled until enough feasible ones are found
(at most ``sampling_rounds`` batches; none at all raises :class:`HwnasError` naming the budget and
the smallest cost seen). An infeasible child is repaired by re-mutating its (feasible) parent at
most ``repair_attempts`` times, then dropped: nothing loops without bound. Fitness and every cost
are computed for the whole population in one vectorised call (``[P, D] -> [P]``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from hwnas.cost.budget import Budget
from hwnas.errors import HwnasError
from hwnas.evolution.config import GAConfig
from hwnas.spaces.space import Decisions

logger = logging.getLogger(__name__)

Fitness = Callable[[np.ndarray], np.ndarray]


@dataclass
class History:
    """Every candidate scored: choices, fitness, costs, feasibility, generation."""

    choices: list[np.ndarray] = field(default_factory=list)
    fitness: list[np.ndarray] = field(default_factory=list)
    costs: list[np.ndarray] = field(default_factory=list)
    feasible: list[np.ndarray] = field(default_factory=list)
    generation: list[np.ndarray] = field(default_factory=list)

    def add(self, choices: np.ndarray, fitness: np.ndarray | None, costs: np.ndarray,
            feasible: np.ndarray, generation: int) -> None:
        self.choices.append(choices)
        self.fitness.append(np.full(len(choices), np.nan) if fitness is None else fitness)
        self.costs.append(costs)
        self.feasible.append(feasible)
        self.generation.append(np.full(len(choices), generation))

    def arrays(self) -> dict[str, np.ndarray]:
        if not self.choices:
            return {"choices": np.zeros((0, 0), dtype=np.int64)}
        return {name: np.concatenate(getattr(self, name)) for name in
                ("choices", "fitness", "costs", "feasible", "generation")}


@dataclass(frozen=True)
class GAResult:
    """Best feasible individual per budget, the final populations, Pareto front and history."""

    best_choices: list[np.ndarray]
    best_fitness: list[float]
    populations: list[np.ndarray]
    pareto_choices: np.ndarray
    pareto_points: np.ndarray  # [M, 2]: fitness, cost of the first constraint
    history: dict[str, np.ndarray]
    scored: int
    seconds: float


def sample_feasible(decisions: Decisions, budget: Budget, count: int,
                    rng: np.random.Generator, *, rounds: int = 50,
                    exclude: set[bytes] | None = None) -> np.ndarray:
    """Up to ``count`` distinct random feasible rows in at most ``rounds`` batches; raises when
    none is found (naming the budget and the smallest cost seen)."""
    found: dict[bytes, np.ndarray] = {}
    exclude = exclude or set()
    smallest = np.full(len(budget.constraints), np.inf)
    tried = 0
    for _ in range(rounds):
        batch = decisions.sample(max(4 * count, 64), rng)
        costs = budget.costs(batch)
        tried += len(batch)
        smallest = np.minimum(smallest, costs.min(axis=0))
        for row in batch[budget.feasible(batch, costs)]:
            key = row.tobytes()
            if key not in exclude:
                found.setdefault(key, row)
        if len(found) >= count:
            break
    if not found:
        raise budget.infeasible_error(smallest, tried)
    return np.array(list(found.values())[:count])


def adaptive_rates(fitness: np.ndarray, f_max: float, f_avg: float, high: float,
                   low: float) -> np.ndarray:
    """Srinivas & Patnaik: ``high (f_max - f)/(f_max - f_avg)`` above average, else ``low``."""
    spread = f_max - f_avg
    if spread <= 1e-12:  # converged population: every individual is "average"
        return np.full(len(fitness), high)
    scaled = high * (f_max - fitness) / spread
    return np.where(fitness >= f_avg, np.clip(scaled, 0.0, 1.0), low)


def _tournament(fitness: np.ndarray, count: int, size: int, rng: np.random.Generator
                ) -> np.ndarray:
    entrants = rng.integers(0, len(fitness), size=(count, size))
    return entrants[np.arange(count), np.argmax(fitness[entrants], axis=1)]


def _unique_rows(choices: np.ndarray, *extra: np.ndarray) -> tuple[np.ndarray, ...]:
    _, first = np.unique(choices, axis=0, return_index=True)
    keep = np.sort(first)
    return (choices[keep], *(array[keep] for array in extra))


def _evolve_one(decisions: Decisions, fitness_function: Fitness, budget: Budget,
                rng: np.random.Generator, config: GAConfig, initial: np.ndarray | None,
                history: History) -> tuple[np.ndarray, np.ndarray]:
    population = sample_feasible(decisions, budget, config.population, rng,
                                 rounds=config.sampling_rounds)
    if initial is not None and len(initial):
        seeds = np.atleast_2d(np.asarray(initial, dtype=np.int64))
        seeds = seeds[budget.feasible(seeds)]
        population = np.concatenate([seeds, population])[: max(config.population, len(seeds))]
    if len(population) < 2:
        population = np.concatenate([population, population])
    fitness = np.asarray(fitness_function(population), dtype=float)
    history.add(population, fitness, budget.costs(population), np.ones(len(population), bool), 0)
    population, fitness = _unique_rows(population, fitness)
    best, floor, stale = float(fitness.max()), config.min_mutation, 0
    for generation in range(1, config.generations + 1):
        f_max, f_avg = float(fitness.max()), float(fitness.mean())
        count = config.population
        first = _tournament(fitness, count, config.tournament, rng)
        second = _tournament(fitness, count, config.tournament, rng)
        better = np.maximum(fitness[first], fitness[second])
        crossover = rng.random(count) < adaptive_rates(better, f_max, f_avg, config.k1, config.k3)
        mixed = decisions.crossover(population[first], population[second], rng)
        children = np.where(crossover[:, None], mixed, population[first])
        parent_fitness = np.where(crossover, better, fitness[first])
        rates = np.maximum(adaptive_rates(parent_fitness, f_max, f_avg, config.k2, config.k4),
                           floor)
        children = decisions.mutate(children, rates, rng)
        children = _repair(children, population[first], budget, decisions, rng, config,
                           history, generation)
        if len(children):
            child_fitness = np.asarray(fitness_function(children), dtype=float)
            history.add(children, child_fitness, budget.costs(children),
                        np.ones(len(children), bool), generation)
            merged, merged_fitness = _unique_rows(np.concatenate([population, children]),
                                                  np.concatenate([fitness, child_fitness]))
            order = np.argsort(-merged_fitness, kind="stable")[: config.population]
            population, fitness = merged[order], merged_fitness[order]
        if fitness.max() > best + 1e-12:
            best, floor, stale = float(fitness.max()), config.min_mutation, 0
        else:
            stale += 1
            if stale >= config.patience:  # stagnation: explore more
                floor, stale = min(0.5, 2 * floor), 0
    return population, fitness


def _repair(children: np.ndarray, parents: np.ndarray, budget: Budget, decisions: Decisions,
            rng: np.random.Generator, config: GAConfig, history: History,
            generation: int) -> np.ndarray:
    """Keep feasible children; re-mutate the parents of infeasible ones a bounded number of
    times (one gene on average); drop those still infeasible."""
    costs = budget.costs(children)
    feasible = budget.feasible(children, costs)
    history.add(children[~feasible], None, costs[~feasible], feasible[~feasible], generation)
    kept = [children[feasible]]
    pending = parents[~feasible]
    rate = 1.0 / max(1, decisions.searchable)
    for _ in range(config.repair_attempts):
        if not len(pending):
            break
        attempt = decisions.mutate(pending, np.full(len(pending), rate), rng)
        costs = budget.costs(attempt)
        ok = budget.feasible(attempt, costs)
        history.add(attempt[~ok], None, costs[~ok], ok[~ok], generation)
        kept.append(attempt[ok])
        pending = pending[~ok]
    return np.concatenate(kept)


def pareto_front(fitness: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points (maximise fitness, minimise cost), via pymoo."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    if len(fitness) == 0:
        return np.zeros(0, dtype=np.int64)
    objectives = np.stack([-np.asarray(fitness, float), np.asarray(cost, float)], axis=1)
    _, distinct = np.unique(objectives, axis=0, return_index=True)  # one point per objective
    front = distinct[NonDominatedSorting().do(objectives[distinct],
                                              only_non_dominated_front=True)]
    return np.asarray(sorted(front, key=lambda i: objectives[i, 1]), dtype=np.int64)


def hypervolume(fitness: np.ndarray, cost: np.ndarray, reference: Sequence[float]) -> float:
    """Hypervolume of (fitness max, cost min) points w.r.t. ``reference`` = (fitness, cost)."""
    from pymoo.indicators.hv import HV

    if len(fitness) == 0:
        return 0.0
    points = np.stack([-np.asarray(fitness, float), np.asarray(cost, float)], axis=1)
    return float(HV(ref_point=np.array([-reference[0], reference[1]]))(points))


def adaptive_ga(decisions: Decisions, fitness: Fitness, budgets: Sequence[Budget], *,
                rng: np.random.Generator, config: GAConfig | None = None,
                initial: np.ndarray | None = None) -> GAResult:
    """Maximise ``fitness`` (vectorised ``[P, D] -> [P]``) over a space's ``decisions`` under
    each budget (module docstring); the search operators are the decisions' own.

    One population evolves per budget; the result holds the best feasible individual of each,
    the Pareto front (fitness vs the first constraint's cost) of every feasible candidate scored,
    and the full history.
    """
    if not isinstance(rng, np.random.Generator):
        raise HwnasError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    config = config or GAConfig()
    started = time.perf_counter()
    history = History()
    best_choices, best_fitness, populations = [], [], []
    for budget in budgets:
        population, values = _evolve_one(decisions, fitness, budget, rng, config, initial,
                                          history)
        best_choices.append(population[0].copy())
        best_fitness.append(float(values[0]))
        populations.append(population)
        logger.info("GA %s: best fitness %.6g", budget.name, values[0])
    arrays = history.arrays()
    feasible = arrays["feasible"].astype(bool)
    choices, values = arrays["choices"][feasible], arrays["fitness"][feasible]
    first_cost = arrays["costs"][feasible][:, 0]
    unique_choices, unique_values, unique_costs = _unique_rows(choices, values, first_cost)
    front = pareto_front(unique_values, unique_costs)
    return GAResult(best_choices, best_fitness, populations, unique_choices[front],
                    np.stack([unique_values[front], unique_costs[front]], axis=1), arrays,
                    int(len(arrays["choices"])), time.perf_counter() - started)
