"""The one cost interface: ``cost(arch) -> float``, and the two views searches need of it.

Every resource model (measured latency LUT, imported device table, NAS-Bench-201 device column,
energy predictor, FLOPs, parameters) is a :class:`CostModel`. Searches see it through:

* :meth:`CostModel.choice_cost` — a vectorised ``[N, D] -> [N]`` function of a space's choice
  matrices (:class:`ChoiceCost`), which budgets hold as hard constraints (the GA, ChamNet,
  random search, regularized evolution; :mod:`hwnas.cost.budget`);
* :meth:`CostModel.layer_cost_matrix` — DNAS's per-layer matrix of a layer-wise space, whose
  expectation under the architecture distribution is

      E_theta[LAT] = constant + sum_l sum_i P_theta(b_l = i) * matrix[l, i],

  exact whenever the model is additive over layers (FBNet, Wu et al. 2019, Eq. 5).

An *additive* model says so by returning a :class:`LayerPrice` from :meth:`CostModel.layer_price`:
the network cost is ``scale * sum_layers price(layer) + offset`` over the builder's shape walk,
and the space turns that into a fast vectorised sum (``SearchSpace.layer_sums``). Other models
are priced network by network, or override :meth:`CostModel.choice_cost` when they index their
own table by the choices (device tables). For a non-additive model the layer matrix is the
first-order expansion around the all-first-candidate network.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from hwnas.arch.build import LayerShape
from hwnas.arch.spec import ArchSpec
from hwnas.errors import HwnasError


@dataclass(frozen=True)
class LayerCostMatrix:
    """``cost(space.to_arch(c)) == constant + sum_l matrix[l, c[l]]`` for additive models."""

    constant: float
    matrix: np.ndarray  # shape [layers, candidates]

    def total(self, choices: Sequence[int]) -> float:
        rows = np.arange(len(choices))
        return float(self.constant + self.matrix[rows, np.asarray(choices)].sum())

    def expected(self, probabilities: Any) -> Any:
        """E[cost] under independent per-layer probabilities (numpy array or torch tensor)."""
        if isinstance(probabilities, np.ndarray):
            return self.constant + float((probabilities * self.matrix).sum())
        import torch

        matrix = torch.as_tensor(self.matrix, dtype=probabilities.dtype,
                                 device=probabilities.device)
        return self.constant + (probabilities * matrix).sum()


@dataclass(frozen=True)
class LayerPrice:
    """An additive cost: ``scale * sum over the walk's layers of price(layer) + offset``.

    ``partial``: the price knows some layers of the space only (a DMasking LUT measured at each
    stage's extreme widths); the space interpolates the others.
    """

    price: Callable[[LayerShape], float]
    scale: float = 1.0
    offset: float = 0.0
    partial: bool = False


@dataclass(frozen=True)
class ChoiceCost:
    """A cost of one space's choice matrices, ``[N, D] -> [N]`` (what a budget constrains)."""

    function: Callable[[np.ndarray], np.ndarray]
    name: str = "cost"
    unit: str = ""

    def __call__(self, choices: np.ndarray) -> np.ndarray:
        """The costs of the rows of ``choices``; a negative or non-finite one raises (a cost
        model never prices an architecture below zero)."""
        matrix = np.atleast_2d(np.asarray(choices))
        costs = np.asarray(self.function(matrix), dtype=float).reshape(len(matrix))
        bad = np.flatnonzero(~np.isfinite(costs) | (costs < 0))
        if len(bad):
            raise HwnasError(f"cost model {self.name!r} priced an architecture at "
                             f"{costs[bad[0]]:.4g} {self.unit}".rstrip() + ": a cost must be a "
                             "finite number >= 0 (an edited scale or offset?)")
        return costs

    def choice_cost(self, space: Any) -> ChoiceCost:
        """Already vectorised (for the space it was made for)."""
        return self


class CostModel(ABC):
    """A hardware or model-size cost of an architecture, e.g. latency in ms on one device."""

    #: short name shown in tables and results, e.g. "ort-1t latency", "raspi4", "mflops"
    name: str = "cost"
    #: unit of :meth:`cost`, e.g. "ms", "mJ", "MFLOPs", "M params"
    unit: str = ""

    @abstractmethod
    def cost(self, arch: ArchSpec) -> float:
        """The cost of one architecture."""

    def costs(self, archs: Sequence[ArchSpec]) -> np.ndarray:
        """Costs of many architectures; models override this when they can vectorise."""
        return np.array([self.cost(arch) for arch in archs], dtype=float)

    def layer_price(self, space: Any) -> LayerPrice | None:
        """The per-layer price of an additive model over ``space`` (raising when the model
        cannot price that space), or None for a model that is not additive."""
        return None

    def choice_cost(self, space: Any) -> ChoiceCost:
        """The model over ``space``'s choice matrices (module docstring)."""
        additive = self.layer_price(space)
        if additive is not None:
            sums = space.layer_sums(additive.price)
            return ChoiceCost(lambda matrix: additive.scale * sums(matrix) + additive.offset,
                              self.name, self.unit)
        return ChoiceCost(lambda matrix: self.costs([space.to_arch(row) for row in matrix]),
                          self.name, self.unit)

    def layer_cost_matrix(self, space: Any) -> LayerCostMatrix:
        """Per-layer, per-candidate costs over a layer-wise space: exact for an additive model;
        otherwise marginal costs around the all-first-candidate architecture ``a0``,
        ``matrix[l, i] = cost(a0 with layer l set to i) - cost(a0)`` (first order)."""
        additive = self.layer_price(space)
        if additive is not None:
            constant, matrix = space.layer_matrix(additive.price)
            return LayerCostMatrix(additive.scale * constant + additive.offset,
                                   additive.scale * matrix)
        reference = [0] * space.num_layers
        base = self.cost(space.to_arch(reference))
        matrix = np.zeros((space.num_layers, space.num_candidates))
        for layer in range(space.num_layers):
            for candidate in range(1, space.num_candidates):
                choices = list(reference)
                choices[layer] = candidate
                matrix[layer, candidate] = self.cost(space.to_arch(choices)) - base
        return LayerCostMatrix(constant=base, matrix=matrix)
