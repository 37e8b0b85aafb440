"""Architectures from a DMasking search's ``P_theta``: argmax, samples and the most probable
network within a latency target.

A DMasking architecture is one option per decision (resolution, the width of every stage, the
block of every layer), drawn independently under ``P_theta``. Its cost with one-hot weights
(:class:`~hwnas.dnas.dmasking_cost.ShapeCostTables`) is

    cost = constant + stem[r] + sum_l table_l[r, block_l, w_in(l), w_out(l)] + head[r, w_last],

so once the resolution and the stage widths are fixed, every layer's block adds its own cost:
the block choice is FBNet's multiple-choice knapsack
(:func:`hwnas.dnas.result.most_probable_within`). :func:`derive_within_target` solves it for
each (resolution, widths) combination, most probable combination first, and stops when no later
combination can beat the best network found (branch and bound on ``log P``). Why a within-target
network at all: the DMasking re-run of ``benchmarks/dmasking_quality`` ended with
``E_theta[cost]`` 2.11 ms against T = 1.88 ms while its per-decision argmax was predicted at
3.45 ms, so the argmax is not the network the user's budget asked for.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

from hwnas.cost.base import CostModel
from hwnas.dnas.dmasking_cost import ShapeCostTables
from hwnas.dnas.result import DerivedArchitecture, most_probable_within
from hwnas.spaces.dmasking import DMaskingSpace

#: floor of a probability before its log: a zero-probability option gets a very negative log
PROBABILITY_FLOOR = 1e-300


def derive(space: DMaskingSpace, probabilities: np.ndarray, cost_model: CostModel,
           choices: Sequence[int], count: int) -> DerivedArchitecture:
    """The :class:`DerivedArchitecture` of one option per decision."""
    choices = tuple(int(choice) for choice in choices)
    arch = space.to_arch(choices)
    log_probability = float(sum(math.log(max(probabilities[row, choice], PROBABILITY_FLOOR))
                                for row, choice in enumerate(choices)))
    return DerivedArchitecture(arch=arch.to_string(), choices=choices,
                               cost=float(cost_model.cost(arch)),
                               log_probability=log_probability, count=count)


def derive_samples(space: DMaskingSpace, probabilities: np.ndarray, cost_model: CostModel, *,
                   num_samples: int, rng: np.random.Generator) -> tuple[DerivedArchitecture, ...]:
    """``num_samples`` draws from ``P_theta`` (one per decision), de-duplicated, cheapest first."""
    counts: dict[tuple[int, ...], int] = {}
    for _ in range(num_samples):
        choices = tuple(int(rng.choice(size, p=row[:size] / row[:size].sum()))
                        for row, size in zip(probabilities, space.decision_sizes))
        counts[choices] = counts.get(choices, 0) + 1
    derived = [derive(space, probabilities, cost_model, choices, count)
               for choices, count in counts.items()]
    return tuple(sorted(derived, key=lambda item: (item.cost, -item.log_probability)))


def derive_within_target(space: DMaskingSpace, probabilities: np.ndarray,
                         tables: ShapeCostTables, target: float, cost_model: CostModel, *,
                         lower: float | None = None, bins: int = 2000
                         ) -> DerivedArchitecture | None:
    """``argmax_a log P_theta(a)`` subject to ``lower <= cost(a) <= target`` (module docstring);
    None when no network of the space fits."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    log_p = np.log(np.maximum(probabilities, PROBABILITY_FLOOR))
    first_layer_row = 1 + space.num_stages
    layer_rows = range(first_layer_row, space.num_decisions)
    allowed = np.zeros((space.num_layers, probabilities.shape[1]), dtype=bool)
    for layer, row in enumerate(layer_rows):
        size = space.decision_sizes[row]
        allowed[layer, :size] = probabilities[row, :size] > 0
    blocks_bound = float(sum(np.max(np.where(allowed[layer], log_p[row], -np.inf))
                             for layer, row in enumerate(layer_rows)))
    shape_decisions = [[option for option in range(space.decision_sizes[row])
                        if probabilities[row, option] > 0] for row in range(first_layer_row)]
    combinations = sorted(
        itertools.product(*shape_decisions),
        key=lambda shape: -sum(log_p[row, option] for row, option in enumerate(shape)))
    best: tuple[float, tuple[int, ...]] | None = None
    for shape in combinations:
        shape_log_p = float(sum(log_p[row, option] for row, option in enumerate(shape)))
        if best is not None and shape_log_p + blocks_bound <= best[0]:
            break  # sorted: no later combination can do better
        constant, matrix = block_costs(space, tables, shape, probabilities.shape[1])
        found = most_probable_within(log_p[first_layer_row:], matrix, allowed, constant,
                                     target, lower=lower, bins=bins)
        if found is not None and (best is None or shape_log_p + found[1] > best[0]):
            best = (shape_log_p + found[1], tuple(shape) + found[0])
    return None if best is None else derive(space, probabilities, cost_model, best[1], 1)


def block_costs(space: DMaskingSpace, tables: ShapeCostTables, shape: Sequence[int],
                width: int) -> tuple[float, np.ndarray]:
    """(constant, [layers, width] block cost matrix) at one resolution and stage widths:
    ``shape`` = (resolution option, width option of every stage); absent candidates cost inf."""
    resolution, widths = shape[0], shape[1:]
    constant = (float(tables.constant) + float(tables.stem[resolution])
                + float(tables.head[resolution, widths[-1]]))
    matrix = np.full((space.num_layers, width), np.inf)
    for layer, table in zip(space.layers, tables.layers):
        out_width = widths[layer.stage]
        if layer.first:
            in_width = widths[layer.stage - 1] if layer.stage > 0 else 0
            costs = table[resolution, :, in_width, out_width]
        else:
            costs = table[resolution, :, out_width]
        matrix[layer.index, :len(costs)] = costs
    return constant, matrix
