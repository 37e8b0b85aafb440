"""FBNetV2's search problem (DMaskingNAS, Wan et al. CVPR 2020): channel and resolution masks.

Everything but the supernet and its cost is the engine's (:mod:`hwnas.dnas.engine`): SGD on the
weights, Adam on theta with ``CE * alpha * log(1 + LAT) ** beta`` (or a target form), the
temperature schedule, the run folder, checkpoints and bit-exact resume. This problem supplies

* the masked supernet (:class:`~hwnas.dnas.masking.MaskedSuperNet`): one theta row per decision
  (resolution, stage widths, layer blocks), sampled with the same Gumbel-softmax from the padded
  logits; with REINFORCE every decision is sampled, resolution and widths included;
* LAT = the effective-shape (or exact expected) cost of the weights the forward pass used
  (:class:`~hwnas.dnas.dmasking_cost.ShapeCostTables`);
* the derivation: the argmax of every decision, ``num_samples`` draws from ``P_theta`` (one
  categorical draw per decision, de-duplicated, ranked by cost) and, with a target, the most
  probable network within it (:func:`derive_within_target`). The derived :class:`ArchSpec` is at
  the chosen resolution.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from hwnas.cost.base import CostModel
from hwnas.dnas.config import DMaskingConfig
from hwnas.dnas.dmasking_cost import DMaskingCost, ShapeCostTables
from hwnas.dnas.engine import Derivation, SearchProgress, check_inputs, run_search
from hwnas.dnas.layerwise import fixed_index
from hwnas.dnas.masking import MaskedSuperNet
from hwnas.dnas.result import (
    PROBABILITY_FLOOR, DerivedArchitecture, SearchResult, derived, lower_bound,
    most_probable_within,
)
from hwnas.dnas.steps import Batches
from hwnas.runs import normalised
from hwnas.spaces.dmasking import DMaskingSpace


class MaskedProblem:
    """DMaskingNAS over ``space`` priced by ``cost_model`` (module docstring)."""

    command = "dmasking"

    def __init__(self, space: DMaskingSpace, cost_model: CostModel,
                 config: DMaskingConfig) -> None:
        check_inputs(space, DMaskingSpace, "DMasking", cost_model, config)
        self.space, self.config = space, config
        self.tables = ShapeCostTables(space, cost_model, mode=config.cost_mode)
        self.pricing = DMaskingCost(self.tables)
        self.cost_name, self.cost_unit = self.tables.name, self.tables.unit
        self.candidates = space.decisions.names
        self.fixed = {space.first_layer_decision + layer: fixed_index(
            space.name, layer, name, space.num_layers, lambda index: space.layers[index].candidates)
            for layer, name in config.fixed_layers}

    def build_supernet(self, resuming: bool) -> torch.nn.Module:
        supernet = MaskedSuperNet(self.space)
        supernet.fix_decisions(self.fixed)
        return supernet

    def latency(self, weights: torch.Tensor) -> torch.Tensor:
        return self.tables.cost(weights)

    def expected_cost(self, probabilities: np.ndarray) -> float:
        return self.tables.expected(probabilities)

    def record(self, probabilities: np.ndarray) -> dict[str, Any]:
        argmax = self.argmax(probabilities)
        return {"argmax_cost": self.tables.cost_of_choices(argmax), "argmax": list(argmax),
                "argmax_arch": self.space.to_arch(argmax).to_string()}

    def argmax(self, probabilities: np.ndarray) -> tuple[int, ...]:
        """The most probable option of every decision (padding has probability 0)."""
        return tuple(int(index) for index in probabilities.argmax(axis=1))

    def derive(self, probabilities: np.ndarray) -> Derivation:
        config, space = self.config, self.space
        rng = np.random.default_rng([config.seed, 2020])  # derivation has its own stream
        within = None
        if config.target_latency is not None:
            within = derive_within_target(
                space, probabilities, self.tables, config.target_latency, self.pricing,
                lower=lower_bound(config.target_latency, config.target_form))
        return Derivation(
            argmax=derived(space, probabilities, self.pricing, self.argmax(probabilities), 1),
            samples=derive_samples(space, probabilities, self.pricing,
                                   num_samples=config.num_samples, rng=rng),
            within_target=within)

    def describe(self) -> dict[str, Any]:
        return {"space": normalised(dataclasses.asdict(self.space)),
                "cost_model": self.tables.to_dict()}


def run_dmasking(space: DMaskingSpace, cost_model: CostModel, weight_batches: Batches,
                 theta_batches: Batches, config: DMaskingConfig | None = None, *,
                 run_dir: str | Path, resume: bool = False,
                 progress: Callable[[SearchProgress], None] | None = None,
                 plots: bool = True) -> SearchResult:
    """DMaskingNAS of ``space`` for ``cost_model``: a LUT of the space (or of its ``-sparse``
    variant), ``FlopsCost`` or ``ParamsCost`` (:func:`hwnas.dnas.engine.run_search`)."""
    problem = MaskedProblem(space, cost_model, config or DMaskingConfig())
    return run_search(problem, weight_batches, theta_batches, run_dir=run_dir, resume=resume,
                      progress=progress, plots=plots)


def derive_samples(space: DMaskingSpace, probabilities: np.ndarray, cost_model: CostModel, *,
                   num_samples: int, rng: np.random.Generator) -> tuple[DerivedArchitecture, ...]:
    """``num_samples`` draws from ``P_theta`` (one per decision), de-duplicated, cheapest first."""
    counts: dict[tuple[int, ...], int] = {}
    sizes = space.decisions.cardinalities.tolist()
    for _ in range(num_samples):
        choices = tuple(int(rng.choice(size, p=row[:size] / row[:size].sum()))
                        for row, size in zip(probabilities, sizes))
        counts[choices] = counts.get(choices, 0) + 1
    found = [derived(space, probabilities, cost_model, choices, count)
             for choices, count in counts.items()]
    return tuple(sorted(found, key=lambda item: (item.cost, -item.log_probability)))


def derive_within_target(space: DMaskingSpace, probabilities: np.ndarray,
                         tables: ShapeCostTables, target: float, cost_model: CostModel, *,
                         lower: float | None = None, bins: int = 2000
                         ) -> DerivedArchitecture | None:
    """``argmax_a log P_theta(a)`` subject to ``lower <= cost(a) <= target``; None when no
    network of the space fits.

    A DMasking architecture's cost with one-hot weights (:class:`ShapeCostTables`) is
    ``constant + stem[r] + sum_l table_l[r, block_l, w_in(l), w_out(l)] + head[r, w_last]``, so
    once the resolution and the stage widths are fixed, every layer's block adds its own cost:
    the block choice is FBNet's multiple-choice knapsack (:func:`most_probable_within`). It is
    solved for each (resolution, widths) combination, most probable combination first, until no
    later combination can beat the best network found (branch and bound on ``log P``)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    log_p = np.log(np.maximum(probabilities, PROBABILITY_FLOOR))
    sizes = space.decisions.cardinalities.tolist()
    first_layer_row = space.first_layer_decision
    layer_rows = range(first_layer_row, len(sizes))
    allowed = np.zeros((space.num_layers, probabilities.shape[1]), dtype=bool)
    for layer, row in enumerate(layer_rows):
        size = sizes[row]
        allowed[layer, :size] = probabilities[row, :size] > 0
    blocks_bound = float(sum(np.max(np.where(allowed[layer], log_p[row], -np.inf))
                             for layer, row in enumerate(layer_rows)))
    shape_decisions = [[option for option in range(sizes[row])
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
    return None if best is None else derived(space, probabilities, cost_model, best[1], 1)


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
