"""FBNet's search problem (Wu et al. 2019): one candidate block per layer of a layer-wise space.

The supernet is :class:`~hwnas.dnas.supernet.SuperNet` (every layer holds all its candidates,
theta ``[L, K]``); LAT of mixing weights ``m`` is the layer cost matrix's
``constant + sum_l sum_i m[l, i] * matrix[l, i]`` (:meth:`CostModel.layer_cost_matrix`, exact
for additive models); the derivations are those of :mod:`hwnas.dnas.result` (the argmax, draws
from ``P_theta`` and, with a target, the most probable network within it).

**Transition layers.** In a layer that changes the width or the stride there is no identity
path: each candidate writes its output in channel coordinates of its own, and the layers after
it see a different representation at every step. A random-path supernet over every layer stayed
at chance on CPU-sized CIFAR-10 runs (docs/studies/dnas-device-fit.md), so
``fix_transitions`` (default ``k3_e6``, MobileNetV2's block) takes the six of FBNet's CIFAR
space out of the search; ``None`` searches every layer, as the paper does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from hwnas.cost.base import CostModel
from hwnas.dnas.checkpoint import load_supernet_weights
from hwnas.dnas.config import DnasConfig
from hwnas.dnas.engine import Derivation, SearchProgress, check_inputs, run_search
from hwnas.dnas.loss import cost_matrix_tensor, expected_cost
from hwnas.dnas.result import (
    SearchResult, derive_argmax, derive_samples, derive_within_target, lower_bound,
)
from hwnas.dnas.steps import Batches
from hwnas.dnas.supernet import SuperNet
from hwnas.errors import HwnasError
from hwnas.runs import normalised
from hwnas.spaces.fbnet import LayerwiseSpace


def fixed_index(space_name: str, layer: Any, name: str, num_layers: int,
                candidates_of: Callable[[int], Sequence[str]]) -> int:
    """The index of candidate ``name`` among ``candidates_of(layer)``; raises naming a layer
    outside the space or a candidate the layer does not have."""
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < num_layers:
        raise HwnasError(f"fixed layer {layer!r} is not a layer of {space_name!r} "
                         f"(0..{num_layers - 1})")
    candidates = tuple(candidates_of(layer))
    if name not in candidates:
        raise HwnasError(f"fixed layer {layer}: unknown candidate {name!r} "
                         f"(the layer has {', '.join(candidates)})")
    return candidates.index(name)


class LayerwiseProblem:
    """FBNet DNAS over ``space`` priced by ``cost_model`` (module docstring)."""

    command = "dnas"

    def __init__(self, space: LayerwiseSpace, cost_model: CostModel,
                 config: DnasConfig) -> None:
        check_inputs(space, LayerwiseSpace, "layer-wise", cost_model, config)
        self.space, self.cost_model, self.config = space, cost_model, config
        self.cost_name, self.cost_unit = cost_model.name, cost_model.unit
        self.candidates = space.candidates
        self.costs = cost_model.layer_cost_matrix(space)
        if np.shape(self.costs.matrix) != (space.num_layers, space.num_candidates):
            raise HwnasError(f"cost model {cost_model.name!r} gave a layer cost matrix of shape "
                             f"{np.shape(self.costs.matrix)}, the space needs "
                             f"{(space.num_layers, space.num_candidates)}")
        self.matrix = cost_matrix_tensor(self.costs, device=config.device)
        self.fixed = self._fixed_choices()

    def _fixed_choices(self) -> dict[int, int]:
        """``{layer: candidate index}`` of ``fixed_layers`` and ``fix_transitions``."""
        space = self.space
        pairs = list(self.config.fixed_layers)
        if self.config.fix_transitions is not None:
            pairs += [(layer, self.config.fix_transitions) for layer in space.transition_layers
                      if layer not in dict(self.config.fixed_layers)]
        return {layer: fixed_index(space.name, layer, name, space.num_layers,
                                   lambda _: space.candidates) for layer, name in pairs}

    def build_supernet(self, resuming: bool) -> torch.nn.Module:
        supernet = SuperNet(self.space, self.config.weight_sharing, self.config.residual_scale)
        supernet.fix_decisions(self.fixed)
        if not resuming and self.config.warm_start is not None:
            load_supernet_weights(self.config.warm_start, supernet)
        return supernet

    def latency(self, weights: torch.Tensor) -> torch.Tensor:
        return expected_cost(weights, self.matrix, float(self.costs.constant))

    def expected_cost(self, probabilities: np.ndarray) -> float:
        return float(self.costs.expected(probabilities))

    def record(self, probabilities: np.ndarray) -> dict[str, Any]:
        argmax = probabilities.argmax(axis=1)
        return {"argmax_cost": self.costs.total(argmax),
                "argmax": [int(index) for index in argmax]}

    def derive(self, probabilities: np.ndarray) -> Derivation:
        config, space, model = self.config, self.space, self.cost_model
        rng = np.random.default_rng([config.seed, 2019])  # derivation has its own stream
        within = None
        if config.target_latency is not None:
            within = derive_within_target(
                space, probabilities, self.costs, config.target_latency, model,
                lower=lower_bound(config.target_latency, config.target_form))
        return Derivation(
            argmax=derive_argmax(space, probabilities, model),
            samples=derive_samples(space, probabilities, model,
                                   num_samples=config.num_samples, rng=rng),
            within_target=within)

    def describe(self) -> dict[str, Any]:
        return {"space": normalised(dataclasses.asdict(self.space)),
                "cost_model": {"name": self.cost_name, "unit": self.cost_unit,
                               "constant": float(self.costs.constant),
                               "matrix": [[float(value) for value in row]
                                          for row in self.costs.matrix]}}


def run_dnas(space: LayerwiseSpace, cost_model: CostModel, weight_batches: Batches,
             theta_batches: Batches, config: DnasConfig | None = None, *, run_dir: str | Path,
             resume: bool = False, progress: Callable[[SearchProgress], None] | None = None,
             plots: bool = True) -> SearchResult:
    """FBNet DNAS of ``space`` for ``cost_model`` (:func:`hwnas.dnas.engine.run_search`):
    ``weight_batches`` / ``theta_batches`` are re-iterable collections of ``(images, labels)``
    or callables ``epoch -> batches``."""
    problem = LayerwiseProblem(space, cost_model, config or DnasConfig())
    return run_search(problem, weight_batches, theta_batches, run_dir=run_dir, resume=resume,
                      progress=progress, plots=plots)
