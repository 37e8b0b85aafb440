"""Differentiable search over NAS-Bench-201 cells: the problem the engine
(:mod:`hwnas.dnas.engine`) runs for the cell space.

The supernet is the benchmark's network (:func:`hwnas.spaces.nb201.nb201_network`) with every
edge of every cell holding all five operations, mixed by one ``theta`` ``[6, 5]`` that all 15
cells share (as DARTS and GDAS search NB201):

    node_i = sum_{j < i} sum_op m[e(j, i), op] * op(node_j),
    m = softmax((theta + g) / tau),  g ~ Gumbel(0, 1),

``none`` contributing zeros. Soft (every operation runs) or sampled (one operation per edge,
straight-through Gumbel), and REINFORCE, come from the engine as for FBNet's space
(:mod:`hwnas.dnas.steps`). LAT of the mixing weights is the cost model's edge matrix,
``constant + sum_e sum_op m[e, op] * matrix[e, op]`` (:meth:`CostModel.layer_cost_matrix`: exact
for an additive model such as :class:`hwnas.cost.nb201_additive.NB201AdditiveLatency`, first
order around the all-3x3 cell for a LUT of this machine). With 15,625 cells the derivation is
exact: the most probable cell, ``num_samples`` draws, and the most probable connected cell (its
output reached from its input) whose cost *by the cost model* is within the target, found by
enumerating every cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from hwnas.arch.blocks import cell_operation
from hwnas.arch.build import build_layer, initialise_weights, walk
from hwnas.arch.spec import CELL_EDGE_NODES, NB201Cell
from hwnas.cost.base import CostModel
from hwnas.dnas.checkpoint import load_supernet_weights
from hwnas.dnas.config import SearchSettings
from hwnas.dnas.engine import Derivation, SearchProgress, check_inputs, run_search
from hwnas.dnas.loss import cost_matrix_tensor, expected_cost
from hwnas.dnas.result import DerivedArchitecture, derive_argmax, derive_samples, derived
from hwnas.dnas.supernet import GumbelSample, path_weights
from hwnas.errors import HwnasError
from hwnas.runs import normalised
from hwnas.spaces.nb201 import NB201_OPS, NB201Space, connected, nb201_network


class MixedEdge(nn.Module):
    """The five operations of one edge; ``none`` (index 0) outputs zeros."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.operations = nn.ModuleList(
            nn.Identity() if op == "none" else cell_operation(op, channels) for op in NB201_OPS)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, index: int | None) -> torch.Tensor:
        if index is not None:
            return weights[index] * self._run(index, x)
        total = weights[1] * self._run(1, x)
        for op in range(2, len(NB201_OPS)):
            total = total + weights[op] * self._run(op, x)
        return total + weights[0] * self._run(0, x)  # zeros, but theta gets a gradient path

    def _run(self, index: int, x: torch.Tensor) -> torch.Tensor:
        return x * 0.0 if index == 0 else self.operations[index](x)


class MixedCell(nn.Module):
    """One cell whose six edges are :class:`MixedEdge` s."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(MixedEdge(channels) for _ in CELL_EDGE_NODES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor,
                indices: Sequence[int] | None) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            total = None
            for edge, (source, node) in enumerate(CELL_EDGE_NODES):
                if node == target:
                    index = None if indices is None else int(indices[edge])
                    out = self.edges[edge](nodes[source], weights[edge], index)
                    total = out if total is None else total + out
            nodes.append(total)
        return nodes[3]


class CellSuperNet(nn.Module):
    """Stem -> 3 stages of mixed cells with the benchmark's reductions -> head; ``theta`` [6, 5]
    shared by every cell (module docstring). The methods the engine calls are those of
    :class:`hwnas.dnas.supernet.SuperNet`."""

    weight_sharing = "independent"  # every edge holds its own operations

    def __init__(self, channels: int = 16, cells: int = 5, num_classes: int = 10) -> None:
        super().__init__()
        layers = walk(nb201_network(("nor_conv_3x3",) * 6, channels=channels, cells=cells,
                                    num_classes=num_classes))
        self.stem, self.head = build_layer(layers[0]), build_layer(layers[-1])
        self.blocks = nn.ModuleList(
            MixedCell(layer.in_channels) if isinstance(layer.spec, NB201Cell)
            else build_layer(layer) for layer in layers[1:-1])
        self.theta = nn.Parameter(torch.zeros(len(CELL_EDGE_NODES), len(NB201_OPS)))
        initialise_weights(self)

    def logits(self) -> torch.Tensor:
        return self.theta

    def weight_parameters(self) -> list[nn.Parameter]:
        return [param for name, param in self.named_parameters() if name != "theta"]

    def forward(self, x: torch.Tensor, weights: torch.Tensor,
                indices: Sequence[int] | None = None) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x, weights, indices) if isinstance(block, MixedCell) else block(x)
        return self.head(x)

    def mixing_weights(self, sample: GumbelSample, mode: str
                       ) -> tuple[torch.Tensor, list[int] | None]:
        return path_weights(sample, mode)

    def run(self, x: torch.Tensor, sample: GumbelSample, mode: str) -> torch.Tensor:
        return self(x, *self.mixing_weights(sample, mode))

    def probabilities(self) -> torch.Tensor:
        return torch.softmax(self.theta.detach(), dim=-1)


class CellProblem:
    """FBNet-style DNAS over the NAS-Bench-201 cells, priced by ``cost_model``."""

    command = "dnas_nb201"

    def __init__(self, space: NB201Space, cost_model: CostModel, config: SearchSettings, *,
                 channels: int = 16, cells: int = 5, warm_start: str | Path | None = None
                 ) -> None:
        check_inputs(space, NB201Space, "NAS-Bench-201", cost_model, config)
        self.space = space
        if config.fixed_layers:
            raise HwnasError(f"a NAS-Bench-201 search fixes no edges, got fixed_layers "
                             f"{config.fixed_layers!r}")
        self.cost_model, self.config = cost_model, config
        self.channels, self.cells = channels, cells
        self.warm_start = None if warm_start is None else Path(warm_start)
        self.cost_name, self.cost_unit = cost_model.name, cost_model.unit
        self.candidates = NB201_OPS
        self.costs = cost_model.layer_cost_matrix(self.space)
        if np.shape(self.costs.matrix) != (6, 5):
            raise HwnasError(f"cost model {cost_model.name!r} gave an edge matrix of shape "
                             f"{np.shape(self.costs.matrix)}, NAS-Bench-201 needs (6, 5)")
        self.matrix = cost_matrix_tensor(self.costs, device=config.device)

    def build_supernet(self, resuming: bool) -> torch.nn.Module:
        supernet = CellSuperNet(self.channels, self.cells)
        if not resuming and self.warm_start is not None:
            load_supernet_weights(self.warm_start, supernet)
        return supernet

    def latency(self, weights: torch.Tensor) -> torch.Tensor:
        return expected_cost(weights, self.matrix, float(self.costs.constant))

    def expected_cost(self, probabilities: np.ndarray) -> float:
        return float(self.costs.expected(probabilities))

    def record(self, probabilities: np.ndarray) -> dict[str, Any]:
        argmax = probabilities.argmax(axis=1)
        return {"argmax_cost": float(self.cost_model.choice_cost(self.space)(argmax)[0]),
                "argmax": self.space.format(argmax)}

    def derive(self, probabilities: np.ndarray) -> Derivation:
        config, model = self.config, self.cost_model
        rng = np.random.default_rng([config.seed, 2019])
        within = None
        if config.target_latency is not None:
            within = most_probable_cell_within(self.space, probabilities, model,
                                               config.target_latency)
        return Derivation(
            argmax=derive_argmax(self.space, probabilities, model),
            samples=derive_samples(self.space, probabilities, model,
                                   num_samples=config.num_samples, rng=rng),
            within_target=within)

    def describe(self) -> dict[str, Any]:
        described = {"space": {"name": self.space.name, "channels": self.channels,
                               "cells": self.cells},
                     "cost_model": normalised({"name": self.cost_name, "unit": self.cost_unit,
                                               "constant": float(self.costs.constant),
                                               "matrix": self.costs.matrix.tolist()})}
        if self.warm_start is not None:  # a search from scratch records no such key
            described["warm_start"] = str(self.warm_start)
        return described


def most_probable_cell_within(space: NB201Space, probabilities: np.ndarray, model: CostModel,
                              target: float, *, connected_only: bool = True
                              ) -> DerivedArchitecture | None:
    """The cell of highest ``P_theta`` whose cost by ``model`` is at most ``target``, over all
    15,625 cells (None when none is). ``connected_only``: only cells whose output the input
    reaches (:func:`hwnas.spaces.nb201.connected`); a cut-off cell computes a constant, and a
    supernet whose zero operation has won would otherwise answer one (benchmarks/RESULTS.md,
    ``nb201_supernet``)."""
    cells = space.all_choices()
    costs = model.choice_cost(space)(cells)
    log_p = np.log(np.maximum(probabilities, 1e-300))[np.arange(6), cells].sum(1)
    allowed = connected(cells) if connected_only else np.ones(len(cells), dtype=bool)
    feasible = np.flatnonzero((costs <= target) & allowed)
    if not len(feasible):
        return None
    best = cells[feasible[np.argmax(log_p[feasible])]]
    return derived(space, probabilities, model, tuple(int(op) for op in best), 1)


def run_cell_dnas(cost_model: CostModel, weight_batches: Any, theta_batches: Any,
                  config: SearchSettings | None = None, *, run_dir: str | Path,
                  resume: bool = False, progress: Callable[[SearchProgress], None] | None = None,
                  plots: bool = True, channels: int = 16, cells: int = 5,
                  warm_start: str | Path | None = None) -> Any:
    """DNAS of the NAS-Bench-201 cells for ``cost_model`` (:func:`hwnas.dnas.engine.run_search`,
    the batches as for :func:`hwnas.dnas.layerwise.run_dnas`); ``channels`` and ``cells`` size
    the supernet (the benchmark's: 16 and 5); ``warm_start`` names another cell search's
    ``checkpoint.pt`` whose weights (not theta) the supernet starts from, such as a shared
    warm-up's (``warmup_epochs = epochs``) for searches under several devices and budgets."""
    problem = CellProblem(NB201Space(), cost_model, config or SearchSettings(),
                          channels=channels, cells=cells, warm_start=warm_start)
    return run_search(problem, weight_batches, theta_batches, run_dir=run_dir, resume=resume,
                      progress=progress, plots=plots)
