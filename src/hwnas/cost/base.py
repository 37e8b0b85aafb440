"""The one cost interface: ``cost(arch) -> float``, plus the per-layer matrix DNAS needs.

Every resource model (measured latency LUT, imported device table, energy predictor, FLOPs,
parameters) is a :class:`CostModel`. The GA uses ``cost`` as a hard budget; DNAS uses the
expectation of the same model under the architecture distribution,

    E_theta[LAT] = constant + sum_l sum_i P_theta(b_l = i) * matrix[l, i],

which is exact whenever the model is additive over layers (LUT sums, device tables, FLOPs,
parameters of a layer-wise space whose layer inputs do not depend on earlier choices, as in
FBNet). For a non-additive model (a GP predictor) the matrix is its first-order expansion around a
reference architecture, which :meth:`CostModel.layer_cost_matrix` computes by default.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from hwnas.arch.spec import ArchSpec

if TYPE_CHECKING:
    from hwnas.spaces.fbnet import LayerwiseSpace


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

    def layer_cost_matrix(self, space: LayerwiseSpace) -> LayerCostMatrix:
        """Per-layer, per-candidate costs over a layer-wise space.

        Default: marginal costs around the all-first-candidate architecture ``a0``,
        ``matrix[l, i] = cost(a0 with layer l set to i) - cost(a0)``. Exact for additive models;
        a first-order approximation otherwise. Models that know their layer costs override it.
        """
        reference = [0] * space.num_layers
        base = self.cost(space.to_arch(reference))
        matrix = np.zeros((space.num_layers, space.num_candidates))
        for layer in range(space.num_layers):
            for candidate in range(1, space.num_candidates):
                choices = list(reference)
                choices[layer] = candidate
                matrix[layer, candidate] = self.cost(space.to_arch(choices)) - base
        return LayerCostMatrix(constant=base, matrix=matrix)
