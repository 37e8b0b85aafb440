"""Resource budgets for search: vectorised costs of choice matrices, constraints and budgets.

The searches here work on integer *choice matrices* ``C [P, D]`` (one architecture per row, one
option index per dimension), so every resource model is turned into a vectorised function
``C -> cost [P]`` (:func:`vectorised_cost`):

* a plain callable is used as it is;
* a model with ``costs_choices`` (the HW-NAS-Bench :class:`~hwnas.cost.device_table.DeviceTable`);
* an additive model over a layer-wise space (FBNet): ``constant + sum_l matrix[l, C[:, l]]`` from
  :meth:`CostModel.layer_cost_matrix`;
* an additive model over the ChamNet space (:class:`GroupCostTable`): the per-layer cost of every
  distinct layer is precomputed once, so a population is priced by table look-ups;
* anything else (e.g. a GP energy predictor, :class:`~hwnas.cost.energy.PredictedCost`): one
  batched ``costs([to_arch(c) for c in C])`` call.

A :class:`Constraint` is ``cost(C) <= limit``; a :class:`Budget` is a named set of constraints
that must all hold (e.g. latency <= 20 ms and energy <= 5 mJ). ChamNet returns one architecture
per budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from hwnas.errors import HwnasError

VectorisedCost = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Constraint:
    """``cost(C) <= limit`` for a vectorised cost; ``name`` and ``unit`` label results."""

    cost: VectorisedCost
    limit: float
    name: str = "cost"
    unit: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, (int, float, np.floating)) \
                or not np.isfinite(self.limit):
            raise HwnasError(f"budget limit of {self.name!r} must be a finite number, "
                             f"got {self.limit!r}")

    def describe(self) -> str:
        return f"{self.name} <= {self.limit:g}{(' ' + self.unit) if self.unit else ''}"


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
        return np.stack([np.asarray(c.cost(array), dtype=float).reshape(len(array))
                         for c in self.constraints], axis=1)

    def limits(self) -> np.ndarray:
        return np.array([c.limit for c in self.constraints], dtype=float)

    def feasible(self, choices: np.ndarray, costs: np.ndarray | None = None) -> np.ndarray:
        costs = self.costs(choices) if costs is None else costs
        return (costs <= self.limits()).all(axis=1)

    def violation(self, costs: np.ndarray) -> np.ndarray:
        """Sum of relative excesses over the limits (0 when feasible), for repair ordering."""
        limits = self.limits()
        return (np.clip(costs - limits, 0.0, None) / np.maximum(np.abs(limits), 1e-12)).sum(1)

    def infeasible_error(self, smallest: np.ndarray, tried: int) -> HwnasError:
        parts = [f"{c.describe()} (smallest seen {value:.4g})"
                 for c, value in zip(self.constraints, smallest)]
        return HwnasError(f"budget '{self.name}' looks infeasible: no architecture found within "
                          f"{'; '.join(parts)} after {tried} candidates")


class GroupCostTable:
    """Additive cost of ChamNet-space architectures from per-layer tables (vectorised).

    ``layer_cost(LayerShape) -> float`` prices one layer (FLOPs counts, a LUT entry...). The
    network cost is ``scale * (stem + sum_g [first_g + (depth_g - 1) * repeat_g] + head) +
    offset`` where ``first_g`` is indexed by (resolution, previous width, width, expansion),
    ``repeat_g`` by (resolution, width, expansion) and the head by (resolution, last width, head
    width): every table is filled once from the space's distinct layers.
    """

    def __init__(self, space: Any, layer_cost: Callable[[Any], float], *, scale: float = 1.0,
                 offset: float = 0.0) -> None:
        self.space, self.scale, self.offset = space, float(scale), float(offset)
        resolutions = space.resolutions
        self.stem = np.array([[layer_cost(space.stem_layer(r, w)) for w in space.stem_widths]
                              for r in resolutions])
        self.first, self.repeat = [], []
        previous = space.stem_widths
        for group in range(1, 8):
            widths, expansions = space.widths[group - 1], space.expansions[group - 1]
            first = np.zeros((len(resolutions), len(previous), len(widths), len(expansions)))
            repeat = np.zeros((len(resolutions), len(widths), len(expansions)))
            for r, resolution in enumerate(resolutions):
                for w, width in enumerate(widths):
                    for e, expansion in enumerate(expansions):
                        for p, in_width in enumerate(previous):
                            first[r, p, w, e] = layer_cost(space.block_layer(
                                resolution, group, in_width, width, expansion, True))
                        if max(space.depths[group - 1]) > 1:
                            repeat[r, w, e] = layer_cost(space.block_layer(
                                resolution, group, width, width, expansion, False))
            self.first.append(first)
            self.repeat.append(repeat)
            previous = widths
        self.head = np.array([[[layer_cost(space.head_layer(r, p, h)) for h in space.head_widths]
                               for p in previous] for r in resolutions])
        self.depth_values = [np.asarray(d) for d in space.depths]

    def __call__(self, choices: np.ndarray) -> np.ndarray:
        C = np.atleast_2d(np.asarray(choices))
        r, stem = C[:, 0], C[:, 1]
        widths, depths, expansions = C[:, 2:9], C[:, 9:16], C[:, 16:23]
        total = self.stem[r, stem].astype(float)
        previous = stem
        for g in range(7):
            total = total + self.first[g][r, previous, widths[:, g], expansions[:, g]]
            total = total + (self.depth_values[g][depths[:, g]] - 1) * \
                self.repeat[g][r, widths[:, g], expansions[:, g]]
            previous = widths[:, g]
        total = total + self.head[r, previous, C[:, 23]]
        return self.scale * total + self.offset


def _layer_cost_function(model: Any) -> tuple[Callable[[Any], float], float, float] | None:
    """(per-layer cost, scale, offset) of an additive model, or None if it is not additive."""
    from hwnas.cost.flops import FlopsCost, ParamsCost, layer_counts
    from hwnas.cost.lut import LatencyTable
    from hwnas.cost.opkey import key_of_layer

    if isinstance(model, FlopsCost):
        return (lambda layer: layer_counts(layer).macs / 1e6), 1.0, 0.0
    if isinstance(model, ParamsCost):
        return (lambda layer: layer_counts(layer).params / 1e6), 1.0, 0.0
    if isinstance(model, LatencyTable):
        return (lambda layer: model.latency(key_of_layer(layer), layer.name)), model.scale, \
            model.offset_ms
    return None


def vectorised_cost(model: Any, space: Any) -> VectorisedCost:
    """A ``choices [P, D] -> cost [P]`` function for ``model`` over ``space`` (module doc)."""
    if not hasattr(model, "cost") and callable(model):
        return model
    if hasattr(model, "costs_choices"):
        return model.costs_choices
    if hasattr(space, "unique_layer_shapes"):  # ChamNet-like
        additive = _layer_cost_function(model)
        if additive is not None:
            layer_cost, scale, offset = additive
            return GroupCostTable(space, layer_cost, scale=scale, offset=offset)
    elif hasattr(space, "layer_shapes") and type(model).__name__ != "PredictedCost":
        matrix = model.layer_cost_matrix(space)
        rows = np.arange(space.num_layers)

        def layerwise(choices: np.ndarray) -> np.ndarray:
            C = np.atleast_2d(np.asarray(choices))
            return matrix.constant + matrix.matrix[rows, C].sum(axis=1)

        return layerwise
    if not hasattr(space, "to_arch"):
        raise HwnasError(f"cost model {getattr(model, 'name', model)!r} cannot price space "
                         f"{getattr(space, 'name', space)!r}")

    def per_architecture(choices: np.ndarray) -> np.ndarray:
        C = np.atleast_2d(np.asarray(choices))
        return np.asarray(model.costs([space.to_arch(row) for row in C]), dtype=float)

    return per_architecture


def make_constraint(cost: Any, limit: float, space: Any) -> Constraint:
    """A :class:`Constraint` from a cost model (or vectorised function) and a limit."""
    name = getattr(cost, "name", getattr(cost, "__name__", "cost"))
    return Constraint(vectorised_cost(cost, space), float(limit), str(name),
                      str(getattr(cost, "unit", "")))


def make_budgets(budgets: Sequence[Any], space: Any) -> list[Budget]:
    """Normalise budgets: each item is a :class:`Budget`, a ``(cost, limit)`` pair, or a list of
    pairs that must all hold."""
    single_pair = (isinstance(budgets, tuple) and len(budgets) == 2
                   and not isinstance(budgets[0], (tuple, list, Budget, Constraint)))
    if isinstance(budgets, (Budget, Constraint)) or single_pair:
        budgets = [budgets]
    result = []
    for item in budgets:
        if isinstance(item, Budget):
            result.append(item)
        elif isinstance(item, Constraint):
            result.append(Budget((item,)))
        elif isinstance(item, tuple) and len(item) == 2 and not isinstance(item[0], tuple):
            result.append(Budget((make_constraint(item[0], item[1], space),)))
        elif isinstance(item, (list, tuple)) and item:
            result.append(Budget(tuple(c if isinstance(c, Constraint)
                                       else make_constraint(c[0], c[1], space) for c in item)))
        else:
            raise HwnasError(f"a budget must be (cost, limit), a list of those, or a Budget; "
                             f"got {item!r}")
    if not result:
        raise HwnasError("at least one budget is needed")
    return result
