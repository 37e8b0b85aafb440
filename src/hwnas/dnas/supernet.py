"""FBNet's stochastic supernet over a :class:`~hwnas.spaces.fbnet.LayerwiseSpace`.

Every searchable layer ``l`` holds all ``K`` candidate blocks of the space and the supernet holds
the architecture logits ``theta[l, i]`` (Wu et al. 2019, section 3.3):

    x_{l+1} = sum_i m_{l,i} * b_{l,i}(x_l),
    m_{l,i} = exp((theta_{l,i} + g_{l,i}) / tau) / sum_j exp((theta_{l,j} + g_{l,j}) / tau),
    g ~ Gumbel(0, 1),    P_theta(b_l = i) = softmax(theta_l)_i.

Two ways to run it:

``soft``     every candidate runs and the outputs are summed with the weights ``m``, as in the
             paper; costs about the sum of all candidates' compute.
``sampled``  one Gumbel draw per layer picks ``i* = argmax_i m_{l,i}`` (an exact sample from
             ``P_theta``, whatever ``tau``) and only ``b_{l,i*}`` runs; its output is multiplied
             by ``(onehot - m.detach() + m)[i*]``, which is 1 in the forward pass but carries the
             Gumbel-softmax gradient to ``theta`` (straight-through estimator, as in
             ProxylessNAS/GDAS). Costs about one child network.

``weight_sharing="nested"`` replaces each layer's independent candidates by slices of one
largest block (:mod:`hwnas.dnas.nested`; Single-Path NAS, FBNetV2), so that every sampled step
trains the weights every candidate uses.

The stem and head are the normal network's (``hwnas.arch.build``), so the weights of one path
load into ``build_model(space.to_arch(choices))`` unchanged (:meth:`SuperNet.extract_child`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from hwnas.arch.blocks import build_block
from hwnas.arch.build import Network, build_layer, build_model, initialise_weights, walk
from hwnas.arch.spec import Block
from hwnas.dnas.config import MODES, WEIGHT_SHARING
from hwnas.dnas.nested import NestedLayer
from hwnas.errors import HwnasError
from hwnas.spaces.fbnet import LayerwiseSpace


def check_weight_sharing(value: str) -> None:
    if value not in WEIGHT_SHARING:
        raise HwnasError(f"weight_sharing must be one of {WEIGHT_SHARING}, got {value!r}")


@dataclass(frozen=True)
class GumbelSample:
    """One Gumbel-softmax draw for every layer: soft weights ``m`` [L, K] and ``argmax_i m``."""

    soft: torch.Tensor
    indices: torch.Tensor

    def straight_through(self) -> torch.Tensor:
        """One-hot rows in value, the gradient of ``soft`` in the backward pass."""
        hard = torch.zeros_like(self.soft).scatter_(-1, self.indices.unsqueeze(-1), 1.0)
        return hard - self.soft.detach() + self.soft


def gumbel_softmax_sample(
    logits: torch.Tensor, temperature: float, generator: torch.Generator
) -> GumbelSample:
    """Draw ``m = softmax((logits + g) / tau)`` row-wise with ``g ~ Gumbel(0, 1)`` from
    ``generator`` (never the global RNG, so a search is reproducible and resumable)."""
    uniform = torch.rand(logits.shape, generator=generator, device=generator.device)
    # u = 0 would give g = -inf; clamp to the smallest normal float.
    uniform = uniform.clamp_min(torch.finfo(uniform.dtype).tiny)
    gumbel = -torch.log(-torch.log(uniform)).to(device=logits.device, dtype=logits.dtype)
    soft = torch.softmax((logits + gumbel) / temperature, dim=-1)
    return GumbelSample(soft=soft, indices=soft.detach().argmax(dim=-1))


def path_weights(sample: GumbelSample, mode: str) -> tuple[torch.Tensor, list[int] | None]:
    """The mixing weights [L, K] and the blocks to run (None: all) for one draw in ``mode``."""
    if mode == "soft":
        return sample.soft, None
    if mode == "sampled":
        return sample.straight_through(), sample.indices.tolist()
    raise HwnasError(f"mode must be one of {MODES}, got {mode!r}")


class MixedLayer(nn.Module):
    """All candidate blocks of one searchable layer (same input shape, same output shape)."""

    def __init__(self, in_channels: int, candidates: Sequence[Block]) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(build_block(in_channels, spec) for spec in candidates)

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor, index: int | None = None
    ) -> torch.Tensor:
        if index is not None:
            return weights[index] * self.candidates[index](x)
        total = weights[0] * self.candidates[0](x)
        for weight, block in zip(weights[1:], self.candidates[1:]):
            total = total + weight * block(x)
        return total

    def child_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        """Candidate ``index``'s weights under its block's own key names."""
        return dict(self.candidates[index].state_dict())

    def set_residual_scales(self, value: float) -> None:
        """Set the last BN scale of every residual candidate (:func:`initialise_weights` sets
        it to 0)."""
        for block in self.candidates:
            if getattr(block, "has_residual", False):
                nn.init.constant_(block.project[1].weight, value)

    def residual_scale(self, index: int) -> float | None:
        """Mean |last BN scale| of candidate ``index`` if it is a residual block, else None."""
        block = self.candidates[index]
        if not getattr(block, "has_residual", False):
            return None
        return float(block.project[1].weight.detach().abs().mean())


class SuperNet(nn.Module):
    """Stem -> one :class:`MixedLayer` per searchable layer -> head, plus ``theta`` [L, K].

    ``theta`` starts at zero (uniform ``P_theta``); the paper does not give its initial value.
    Weights are initialised as :func:`hwnas.arch.build.build_model` does, except that the last
    BN scale of every residual candidate starts at ``residual_scale`` (0: "zero-gamma", every
    block starts as the identity, as in ``build_model``). ``weight_sharing``: "independent"
    (FBNet: :class:`MixedLayer`) or "nested" (:class:`NestedLayer`).
    """

    def __init__(self, space: LayerwiseSpace, weight_sharing: str = "independent",
                 residual_scale: float = 0.0) -> None:
        super().__init__()
        check_weight_sharing(weight_sharing)
        self.space, self.weight_sharing = space, weight_sharing
        layer_type = MixedLayer if weight_sharing == "independent" else NestedLayer
        # to_arch validates every candidate at every layer (e.g. group divisibility).
        per_candidate = [
            space.to_arch([candidate] * space.num_layers)
            for candidate in range(space.num_candidates)
        ]
        shapes = walk(per_candidate[0])
        self.stem = build_layer(shapes[0])
        self.layers = nn.ModuleList(
            layer_type(shape.in_channels, [arch.blocks[layer] for arch in per_candidate])
            for layer, shape in enumerate(shapes[1:-1])
        )
        self.head = build_layer(shapes[-1])
        self.theta = nn.Parameter(torch.zeros(space.num_layers, space.num_candidates))
        # -inf on the candidates a fixed layer may not take (fix_decisions); not in state_dict.
        self.register_buffer("logit_mask", torch.zeros(self.theta.shape), persistent=False)
        initialise_weights(self)
        for layer in self.layers:
            layer.set_residual_scales(residual_scale)

    def fix_decisions(self, fixed: dict[int, int]) -> None:
        """Give each layer ``l`` of ``fixed`` the one candidate ``fixed[l]``: the others get
        probability 0 (their logits are masked to -inf), so they are never sampled or derived."""
        mask = torch.zeros_like(self.logit_mask)
        for layer, candidate in fixed.items():
            mask[layer] = float("-inf")
            mask[layer, candidate] = 0.0
        self.logit_mask.copy_(mask)

    def logits(self) -> torch.Tensor:
        """``theta`` with the fixed layers' other candidates at -inf: what is sampled from."""
        return self.theta + self.logit_mask

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter but ``theta`` (trained by SGD on the weight split)."""
        return [param for name, param in self.named_parameters() if name != "theta"]

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        indices: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """``weights`` [L, K] mixes the candidates; with ``indices`` only those blocks run."""
        x = self.stem(x)
        for layer, mixed in enumerate(self.layers):
            index = None if indices is None else int(indices[layer])
            x = mixed(x, weights[layer], index)
        return self.head(x)

    def mixing_weights(self, sample: GumbelSample, mode: str
                       ) -> tuple[torch.Tensor, list[int] | None]:
        """:func:`path_weights` of one draw."""
        return path_weights(sample, mode)

    def run(self, x: torch.Tensor, sample: GumbelSample, mode: str) -> torch.Tensor:
        """Forward one Gumbel draw in ``mode`` ("soft" or "sampled", module docstring)."""
        return self(x, *self.mixing_weights(sample, mode))

    def probabilities(self) -> torch.Tensor:
        """``P_theta`` [L, K] = softmax(logits) per layer, detached."""
        return torch.softmax(self.logits().detach(), dim=-1)

    def argmax_choices(self) -> tuple[int, ...]:
        return tuple(int(index) for index in self.logits().detach().argmax(dim=-1))

    def child_state_dict(self, choices: Sequence[int]) -> dict[str, torch.Tensor]:
        """The weights of path ``choices`` under the key names of :class:`Network`."""
        choices = self.space.choices_of(self.space.to_arch(choices))
        state = {}
        for key, value in self.state_dict().items():
            if not key.startswith(("theta", "layers.")):
                state[key] = value
        for layer, (mixed, choice) in enumerate(zip(self.layers, choices)):
            state.update({f"blocks.{layer}.{key}": value
                          for key, value in mixed.child_state_dict(choice).items()})
        return state

    def extract_child(self, choices: Sequence[int]) -> Network:
        """``build_model(space.to_arch(choices))`` carrying this supernet's weights of the path."""
        child = build_model(self.space.to_arch(choices))
        child.load_state_dict(self.child_state_dict(choices), strict=True)
        return child
