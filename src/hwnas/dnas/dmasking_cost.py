"""Differentiable cost of the masked supernet: per-layer costs at every width option, combined
at the *effective shape* (FBNetV2) or as the exact expectation.

Every layer's cost comes from the ordinary cost interface, one layer of the shape walk at a time
(:func:`layer_pricer`): a measured LUT entry (``scale * LUT[key]``, the table's ``offset`` added
once), or its multiply-adds / parameters (:mod:`hwnas.cost.flops`). For every resolution ``r``,
layer ``l`` and block ``k`` this gives a table ``T_{r,l,k}[i, j]`` over the input-width option
``i`` (the previous stage's) and the output-width option ``j``. With weights ``h`` (resolution),
``g`` (widths) and ``m`` (blocks), two readings of the network's cost:

``expected``   the exact expectation when the decisions are independent,
               ``E[cost_l] = sum_r h_r sum_k m_k sum_{i,j} g^in_i g^out_j T_{r,l,k}[i, j]``
               (inside a stage the input and output width are one decision: ``sum_i g_i T[i, i]``);
``effective``  the paper's *effective shape* (default): the cost of the layer at the expected
               widths ``E[c_in] = sum_i g^in_i c_i`` and ``E[c_out]``, propagated layer to layer,
               read from ``T`` by piecewise-linear interpolation between the width options,
               ``cost_l = sum_r h_r sum_k m_k u(E[c_in])^T T_{r,l,k} u(E[c_out])`` with ``u`` the
               hat-function weights of the interpolation.

Both equal the plain network's cost at one-hot weights. They differ in between: a layer whose
cost grows faster than linearly in its width (an expansion conv, ``e * c_in^2``) costs less at the
mean width than on average over the widths (Jensen), so the effective shape is optimistic about
mixed distributions; it is also what FBNetV2 propagates and what a width that is "mostly" c
costs. The resolution, one choice for the whole network, is always averaged exactly.

**Sparse tables.** A LUT of the ``*-sparse`` variant of the space (``hwnas lut build --space
dmasking-cifar-sparse``) holds only the narrowest and widest option of each stage; the missing
entries are linearly interpolated along the output width, then along the input width.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from hwnas.arch.build import LayerShape
from hwnas.arch.spec import ArchSpec
from hwnas.cost.base import CostModel
from hwnas.cost.lut import LutError
from hwnas.dnas.config import COST_MODES
from hwnas.errors import HwnasError
from hwnas.spaces.dmasking import DMaskingSpace

Price = Callable[[LayerShape], float]


def layer_pricer(cost_model: CostModel, space: DMaskingSpace) -> tuple[Price, float, bool]:
    """``(price of one layer, constant added once, interpolate missing widths)`` of an additive
    cost model (:meth:`CostModel.layer_price`)."""
    additive = cost_model.layer_price(space)
    if additive is None:
        raise HwnasError(f"cost model {cost_model.name!r} cannot price single layers; use a LUT "
                         f"of the space, flops or params")
    scale, price = additive.scale, additive.price
    return (lambda layer: scale * price(layer)), additive.offset, additive.partial


def fill_by_interpolation(values: np.ndarray, grids: list[tuple[int, ...] | None]
                          ) -> np.ndarray:
    """Replace NaNs by linear interpolation over the width grid of each axis (``None``: an axis
    that is not a width), one axis after the other."""
    values = np.array(values, dtype=float)
    for axis, grid in enumerate(grids):
        if grid is None:
            continue
        points = np.asarray(grid, dtype=float)

        def fill(line: np.ndarray) -> np.ndarray:
            known = np.isfinite(line)
            if known.any() and not known.all():
                line = line.copy()
                line[~known] = np.interp(points[~known], points[known], line[known])
            return line

        values = np.apply_along_axis(fill, axis, values)
    return values


def hat_weights(value: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Weights ``u`` with ``sum_i u_i grid_i == value`` of piecewise-linear interpolation."""
    if len(grid) == 1:
        return torch.ones_like(grid)
    gaps = grid[1:] - grid[:-1]
    infinite = torch.full((1,), float("inf"), dtype=grid.dtype, device=grid.device)
    distance = value - grid
    gap = torch.where(distance >= 0, torch.cat([gaps, infinite]), torch.cat([infinite, gaps]))
    return (1 - distance.abs() / gap).clamp_min(0)


class ShapeCostTables:
    """The per-layer cost tables of a :class:`DMaskingSpace` and their differentiable sum."""

    def __init__(self, space: DMaskingSpace, cost_model: CostModel, *,
                 mode: str = "effective") -> None:
        if mode not in COST_MODES:
            raise HwnasError(f"cost mode must be one of {COST_MODES}, got {mode!r}")
        self.space, self.mode = space, mode
        self.name, self.unit = cost_model.name, cost_model.unit
        price, self.constant, interpolate = layer_pricer(cost_model, space)
        priced = self._tolerant(price) if interpolate else price
        self.stem = np.array([price(space.stem_shape(r)) for r in space.resolutions])
        self.layers = [self._layer_table(priced, layer, interpolate) for layer in space.layers]
        self.head = np.array([[priced(space.head_shape(r, width))
                               for width in space.stage_widths[-1]] for r in space.resolutions])
        if interpolate:
            self.head = fill_by_interpolation(self.head, [None, space.stage_widths[-1]])
        for table in [self.stem, self.head, *self.layers]:
            if not np.all(np.isfinite(table)):
                raise LutError(f"cost model {self.name!r} left layer costs of {space.name} unknown")
        self._tensors: dict[Any, list[torch.Tensor]] = {}

    @staticmethod
    def _tolerant(price: Price) -> Price:
        def tolerant(layer: LayerShape) -> float:
            try:
                return price(layer)
            except LutError:
                return float("nan")  # not in the sparse table: interpolated afterwards
        return tolerant

    def _layer_table(self, price: Price, layer: Any, interpolate: bool) -> np.ndarray:
        space = self.space
        in_widths, out_widths = space.input_widths(layer), space.stage_widths[layer.stage]
        if layer.first:
            table = np.array([[[[price(space.layer_shape(r, layer, name, a, b))
                                 for b in out_widths] for a in in_widths]
                               for name in layer.candidates] for r in space.resolutions])
            grids = [None, None, in_widths, out_widths]
        else:
            table = np.array([[[price(space.layer_shape(r, layer, name, width, width))
                                for width in out_widths] for name in layer.candidates]
                              for r in space.resolutions])
            grids = [None, None, out_widths]
        return fill_by_interpolation(table, grids) if interpolate else table

    def _on(self, like: torch.Tensor) -> list[torch.Tensor]:
        key = (like.device, like.dtype)
        if key not in self._tensors:
            self._tensors[key] = [torch.as_tensor(table, dtype=like.dtype, device=like.device)
                                  for table in [self.stem, self.head, *self.layers]]
        return self._tensors[key]

    def _shape_weights(self, weights: torch.Tensor, widths: tuple[int, ...]) -> torch.Tensor:
        if self.mode == "expected":
            return weights
        grid = torch.tensor(widths, dtype=weights.dtype, device=weights.device)
        return hat_weights(weights @ grid, grid)

    def cost(self, weights: torch.Tensor) -> torch.Tensor:
        """The network cost under decision weights [D, Kmax] (differentiable; module docstring)."""
        space = self.space
        rows = [weights[decision, :size]
                for decision, size in enumerate(space.decisions.cardinalities.tolist())]
        stem, head, *layers = self._on(weights)
        resolution = rows[0]
        total = self.constant + resolution @ stem
        in_weights, in_widths = rows[0].new_ones(1), space.stem_widths()
        for layer, table in zip(space.layers, layers):
            out_weights, out_widths = rows[1 + layer.stage], space.stage_widths[layer.stage]
            blocks = rows[space.first_layer_decision + layer.index]
            out_shape = self._shape_weights(out_weights, out_widths)
            if layer.first:
                in_shape = self._shape_weights(in_weights, in_widths)
                total = total + torch.einsum("r,k,rkij,i,j->", resolution, blocks, table,
                                             in_shape, out_shape)
            else:
                total = total + torch.einsum("r,k,rki,i->", resolution, blocks, table, out_shape)
            in_weights, in_widths = out_weights, out_widths
        return total + torch.einsum("r,rj,j->", resolution, head,
                                    self._shape_weights(in_weights, in_widths))

    def one_hot(self, choices: tuple[int, ...]) -> torch.Tensor:
        sizes = self.space.decisions.cardinalities.tolist()
        weights = torch.zeros(len(sizes), max(sizes), dtype=torch.float64)
        weights[torch.arange(len(choices)), torch.tensor(choices)] = 1.0
        return weights

    def cost_of_choices(self, choices: tuple[int, ...]) -> float:
        return float(self.cost(self.one_hot(tuple(choices))))

    def expected(self, probabilities: Any) -> float:
        """The cost under ``P_theta`` [D, Kmax] in this object's mode."""
        return float(self.cost(torch.as_tensor(np.asarray(probabilities), dtype=torch.float64)))

    def to_dict(self) -> dict[str, Any]:
        """Everything the search sees of the cost model (saved in the run's config.json)."""
        return {"name": self.name, "unit": self.unit, "mode": self.mode,
                "constant": float(self.constant), "stem": self.stem.tolist(),
                "head": self.head.tolist(), "layers": [table.tolist() for table in self.layers]}


class DMaskingCost(CostModel):
    """``cost(arch)`` of an architecture of the space, read from the same tables as the search
    (so sparse tables are interpolated the same way and any resolution of the space is priced)."""

    def __init__(self, tables: ShapeCostTables) -> None:
        self.tables = tables
        self.name, self.unit = tables.name, tables.unit

    def cost(self, arch: ArchSpec) -> float:
        return self.tables.cost_of_choices(self.tables.space.choices_of(arch))
