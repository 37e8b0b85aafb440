"""An additive per-(edge, operation) latency model of NAS-Bench-201 cells, fitted from a few rows
of a device column.

A device whose table holds only whole-network latencies (``nb201_latency.csv.gz``: HW-NAS-Bench
measured raspi4 and pixel3 and simulated eyeriss and fpga, HELP measured pixel2, a 1080 Ti and a
Xeon Gold 6226) is priced, in the form FBNet's Eq. 5 gives a LUT, as

    LAT(cell) = b + sum_e w[e, op_e(cell)],

one weight per edge ``e`` (6) and operation (5) with ``w[e, none] = 0`` (25 unknowns, the model's
rank), fitted by least squares to ``rows`` uniformly drawn cells of the column. Fitted from
``rows`` cells, it is what a user who can afford to time ``rows`` networks on a device gets; its
fidelity on the other cells (:func:`fidelity_on_rest`) says how additive the device is. As a
:class:`~hwnas.cost.base.LayerCostMatrix` over the space's six decisions it serves DNAS (the
expected latency ``b + sum_e sum_op p[e, op] w[e, op]``) and the GA (a hard budget) through the
one cost interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hwnas.arch.spec import ArchSpec
from hwnas.cost.base import ChoiceCost, CostModel, LayerCostMatrix
from hwnas.data.tables import nb201_latency, nb201_latency_columns
from hwnas.errors import HwnasError
from hwnas.spaces.nb201 import NB201Space

UNKNOWNS = 1 + 6 * 4  # the base, and 4 operations per edge beside 'none'


def one_hot(choices: np.ndarray) -> np.ndarray:
    """``[N, 6]`` op indices -> ``[N, 25]``: a 1 column, then each edge's ops 1..4."""
    choices = np.atleast_2d(np.asarray(choices, dtype=np.int64))
    features = np.zeros((len(choices), UNKNOWNS))
    features[:, 0] = 1.0
    for edge in range(6):
        taken = choices[:, edge] > 0
        features[np.flatnonzero(taken), 1 + 4 * edge + choices[taken, edge] - 1] = 1.0
    return features


class NB201AdditiveLatency(CostModel):
    """``b + sum_e w[e, op_e]`` fitted to ``rows`` random cells of a column of latencies (one
    per cell, in NB201 index order); :meth:`from_column` reads one of ``nb201_latency.csv.gz``."""

    unit = "ms"

    def __init__(self, values: np.ndarray, rows: int, *, seed: int = 0, name: str = "latency",
                 data_dir: str | Path | None = None) -> None:
        self.space, self.data_dir = NB201Space(), data_dir
        every = self.space.all_choices(data_dir)  # row i = NB201 index i
        self.values = np.asarray(values, dtype=float)
        if self.values.shape != (len(every),):
            raise HwnasError(f"an additive NB201 model needs one latency per cell "
                             f"({len(every)}), got shape {self.values.shape}")
        if isinstance(rows, bool) or not isinstance(rows, int) or not (
                UNKNOWNS <= rows <= len(every)):
            raise HwnasError(f"an additive NB201 model needs rows in {UNKNOWNS}..{len(every)} "
                             f"(its unknowns .. every cell), got {rows!r}")
        self.column, self.rows, self.seed = name, rows, seed
        self.name = f"{name} additive ({rows} cells)"
        self.fitted_indices = np.sort(np.random.default_rng(seed).choice(len(every), rows,
                                                                         replace=False))
        weights, *_ = np.linalg.lstsq(one_hot(every[self.fitted_indices]),
                                      self.values[self.fitted_indices], rcond=None)
        self.base = float(weights[0])
        self.weights = np.zeros((6, 5))
        self.weights[:, 1:] = weights[1:].reshape(6, 4)

    @classmethod
    def from_column(cls, column: str, rows: int, *, seed: int = 0,
                    data_dir: str | Path | None = None) -> NB201AdditiveLatency:
        """The model of one device column of ``nb201_latency.csv.gz``."""
        known = nb201_latency_columns(data_dir)
        if column not in known:
            raise HwnasError(f"unknown latency column {column!r} of nb201_latency.csv.gz "
                             f"(known: {', '.join(known)})")
        return cls(nb201_latency(column, data_dir), rows, seed=seed, name=column,
                   data_dir=data_dir)

    def costs_choices(self, choices: np.ndarray) -> np.ndarray:
        """``max(0, b + sum_e w[e, op_e])``: the least-squares fit of a device whose small
        cells cost little (raspi4, pixel3) goes below zero for about 200 of the 15,625 cells,
        and a latency is never negative."""
        matrix = np.atleast_2d(np.asarray(choices, dtype=np.int64))
        return np.maximum(0.0, self.base + self.weights[np.arange(6), matrix].sum(1))

    def cost(self, arch: ArchSpec) -> float:
        return float(self.costs_choices(np.array([self.space.choices_of(arch)]))[0])

    def choice_cost(self, space: Any) -> ChoiceCost:
        self._check(space)
        return ChoiceCost(self.costs_choices, self.name, self.unit)

    def layer_cost_matrix(self, space: Any) -> LayerCostMatrix:
        """Exact: the model is additive over the six edge decisions."""
        self._check(space)
        return LayerCostMatrix(constant=self.base, matrix=self.weights.copy())

    def _check(self, space: Any) -> None:
        if space.name != self.space.name:
            raise HwnasError(f"{self.name} prices space nb201, not {space.name!r}")

    def fidelity_on_rest(self) -> dict[str, Any]:
        """Within +-10 %, MAPE and Kendall's tau of the model on every cell it was not fitted
        to, against the column."""
        from scipy.stats import kendalltau

        every = self.space.all_choices(self.data_dir)
        rest = np.setdiff1d(np.arange(len(every)), self.fitted_indices)
        predicted, measured = self.costs_choices(every[rest]), self.values[rest]
        error = np.abs(predicted - measured) / measured
        return {"column": self.column, "rows": self.rows, "seed": self.seed,
                "cells": int(len(rest)), "within_10pct": 100.0 * float(np.mean(error <= 0.10)),
                "within_5pct": 100.0 * float(np.mean(error <= 0.05)),
                "mape": 100.0 * float(np.mean(error)),
                "kendall": float(kendalltau(predicted, measured)[0])}
