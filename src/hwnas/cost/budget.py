"""Budgets: hard resource constraints on choice matrices, for the searches that sample
architectures (ChamNet, the adaptive GA, random search, regularized evolution).

A :class:`Constraint` is ``cost(C) <= limit`` for a :class:`~hwnas.cost.base.ChoiceCost` (any
cost model over a space: :meth:`CostModel.choice_cost`); a :class:`Budget` is a named set of
constraints that must all hold (e.g. latency <= 20 ms and energy <= 5 mJ). ChamNet returns one
architecture per budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hwnas.cost.base import ChoiceCost
from hwnas.errors import HwnasError


@dataclass(frozen=True)
class Constraint:
    """``cost(C) <= limit``."""

    cost: ChoiceCost
    limit: float

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, (int, float, np.floating)) \
                or not np.isfinite(self.limit):
            raise HwnasError(f"budget limit of {self.cost.name!r} must be a finite number, "
                             f"got {self.limit!r}")

    def describe(self) -> str:
        unit = f" {self.cost.unit}" if self.cost.unit else ""
        return f"{self.cost.name} <= {self.limit:g}{unit}"


@dataclass(frozen=True)
class Budget:
    """Constraints that must all hold; one search target (ChamNet answers one arch per budget)."""

    constraints: tuple[Constraint, ...]
    name: str = ""

    def __post_init__(self) -> None:
        if not self.constraints:
            raise HwnasError("a budget needs at least one constraint")
        if not self.name:
            object.__setattr__(self, "name", " & ".join(c.describe() for c in self.constraints))

    def costs(self, choices: np.ndarray) -> np.ndarray:
        """``[P, K]`` costs of every constraint (one vectorised call each)."""
        array = np.atleast_2d(np.asarray(choices))
        if len(array) == 0:
            return np.zeros((0, len(self.constraints)))
        return np.stack([c.cost(array) for c in self.constraints], axis=1)

    def limits(self) -> np.ndarray:
        return np.array([c.limit for c in self.constraints], dtype=float)

    def feasible(self, choices: np.ndarray, costs: np.ndarray | None = None) -> np.ndarray:
        costs = self.costs(choices) if costs is None else costs
        return (costs <= self.limits()).all(axis=1)

    def infeasible_error(self, smallest: np.ndarray, tried: int) -> HwnasError:
        parts = [f"{c.describe()} (smallest seen {value:.4g})"
                 for c, value in zip(self.constraints, smallest)]
        return HwnasError(f"budget '{self.name}' looks infeasible: no architecture found within "
                          f"{'; '.join(parts)} after {tried} candidates")


def make_budgets(budgets: Sequence[Any], space: Any) -> list[Budget]:
    """Budgets from a list whose items are a :class:`Budget`, a ``(cost model, limit)`` pair or
    a list of pairs that must all hold (a cost model: anything with ``choice_cost(space)``)."""
    result = []
    for item in budgets:
        if isinstance(item, Budget):
            result.append(item)
            continue
        pairs = [item] if isinstance(item, tuple) else item
        if not isinstance(pairs, list) or not pairs or not all(
                isinstance(pair, tuple) and len(pair) == 2 for pair in pairs):
            raise HwnasError(f"a budget must be (cost, limit), a list of those, or a Budget; "
                             f"got {item!r:.100}")
        result.append(Budget(tuple(Constraint(model.choice_cost(space), limit)
                                   for model, limit in pairs)))
    if not result:
        raise HwnasError("at least one budget is needed")
    return result
