"""The FBNet latency-aware loss and its hard-budget variant.

FBNet (Wu et al., CVPR 2019, eq. 2):

    L(a, w_a) = CE(a, w_a) * alpha * log(LAT(a)) ** beta,        alpha = 0.2, beta = 0.6,

with the latency made differentiable as its expectation under the Gumbel-softmax weights ``m``
(every reimplementation; the matrix comes from :meth:`CostModel.layer_cost_matrix`):

    LAT = constant + sum_l sum_i m_{l,i} * matrix[l, i].

**Guard for small latencies.** ``log(LAT) ** beta`` is negative at LAT < 1 and undefined (NaN) for
a fractional beta, and its relative sensitivity ``d log L / d log LAT = beta / log(LAT)`` grows
without bound as LAT -> 1; CIFAR-sized networks run in about 1-5 ms. We therefore use
``log(1 + LAT)``: positive for every LAT > 0, larger than the paper's ``log(LAT)`` by only
``log(1 + 1/LAT) < 1/LAT`` (under 2 % relative for the paper's 20-30 ms S8 latencies), and with a
sensitivity
``beta * LAT / ((1 + LAT) * log(1 + LAT))`` that never exceeds beta (0.36 at 2 ms, 0.18 at 25 ms,
where the paper's form gives 0.87 and 0.19). LAT is in the cost model's unit (ms for latency
tables); an expected cost that is not positive is clamped to 1e-6 of that unit.

**Budget form.** For a hard budget ``T`` (``target`` below) we use the MnasNet hard-constraint
objective (Tan et al., CVPR 2019, eq. 2: ``ACC * (LAT / T) ** w`` with ``w = 0`` when
``LAT <= T``) written as a loss:

    L = CE * alpha * max(1, LAT / T) ** beta.

Why this form: it is unit-free (no log guard needed); inside the budget it is plain CE, so a
loose budget leaves the search to accuracy alone, while above the budget every 1 % of excess
latency costs beta % of loss. The alternatives were rejected: ``CE * (LAT / T) ** beta`` keeps
pushing latency down below the budget (it is the soft, not the hard, constraint), and TuNAS's
``CE + lambda * |LAT / T - 1|`` pulls a model that is under the budget *up* to it and adds a
scale ``lambda`` that must be tuned against CE. Since the budget is on the expected latency,
the derived architecture can still exceed ``T``; :mod:`hwnas.dnas.result` reports its cost.

**Absolute (two-sided) target.** ``target_form="absolute"`` penalises missing ``T`` on either
side, in the spirit of TuNAS's absolute reward (Bender et al., CVPR 2020, eq. 1:
``Q + beta * |LAT / T - 1|``), written in the same unit-free, multiplicative form:

    L = CE * alpha * max(LAT / T, T / LAT) ** beta.

Why it exists: with the one-sided budget a supernet whose weights are still poor sees parameter-
free paths as no worse than the others, and nothing stops theta from drifting to them far under
the budget (benchmarks/RESULTS.md, "FBNet DNAS per device"). The two-sided form holds the
expected latency at ``T``, so the search spends the budget and the choice is between networks of
the latency the user asked for.

``alpha`` only scales the loss. Adam is invariant to that scale, so alpha's one effect is its
ratio to theta's L2 weight decay (5e-4), which Adam adds to the gradient: alpha 1e-4 lets the
decay hold theta at uniform. The balance between accuracy and latency is set by ``beta`` (and,
in the FBNet form, by the latency unit); ``beta = 0`` is plain CE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from hwnas.cost.base import LayerCostMatrix
from hwnas.errors import HwnasError

ALPHA = 0.2
BETA = 0.6
#: Floor for an expected cost that is not positive (a first-order model can produce one).
MINIMUM_COST = 1e-6


def cost_matrix_tensor(
    costs: LayerCostMatrix, *, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The [L, K] matrix as a float32 tensor; raises if it holds NaN or infinity."""
    matrix = np.asarray(costs.matrix, dtype=np.float64)
    if not np.all(np.isfinite(matrix)) or not math.isfinite(costs.constant):
        raise HwnasError("the cost model's layer cost matrix holds NaN or infinite values")
    return torch.as_tensor(matrix, dtype=torch.float32, device=device)


def expected_cost(weights: torch.Tensor, matrix: torch.Tensor, constant: float) -> torch.Tensor:
    """``constant + sum_l sum_i weights[l, i] * matrix[l, i]`` (differentiable in ``weights``).

    With Gumbel weights this is the supernet's LAT; with ``softmax(theta)`` it is
    ``E_theta[LAT]``; with one-hot rows it is the cost of that path.
    """
    if weights.shape != matrix.shape:
        raise HwnasError(
            f"weights of shape {tuple(weights.shape)} do not match the cost matrix "
            f"{tuple(matrix.shape)}"
        )
    return constant + (weights * matrix).sum()


def latency_factor(
    latency: torch.Tensor,
    *,
    alpha: float = ALPHA,
    beta: float = BETA,
    target: float | None = None,
    target_form: str = "budget",
) -> torch.Tensor:
    """``alpha * log(1 + LAT) ** beta`` (FBNet, guarded); with a target ``T``,
    ``alpha * max(1, LAT/T) ** beta`` ("budget") or ``alpha * max(LAT/T, T/LAT) ** beta``
    ("absolute")."""
    latency = latency.clamp_min(MINIMUM_COST)
    if target is None:
        return alpha * torch.log1p(latency) ** beta
    ratio = latency / target
    if target_form == "absolute":
        return alpha * torch.maximum(ratio, 1.0 / ratio) ** beta
    return alpha * ratio.clamp_min(1.0) ** beta


@dataclass(frozen=True)
class LossSettings:
    """The loss's parameters, as a search config holds them."""

    alpha: float = ALPHA
    beta: float = BETA
    target: float | None = None
    target_form: str = "budget"

    def factor(self, latency: torch.Tensor) -> torch.Tensor:
        """:func:`latency_factor` of these settings."""
        return latency_factor(latency, alpha=self.alpha, beta=self.beta, target=self.target,
                              target_form=self.target_form)

    def loss(self, cross_entropy: torch.Tensor, latency: torch.Tensor) -> torch.Tensor:
        """The loss of the module docstring: ``CE * latency_factor(LAT)``."""
        return cross_entropy * self.factor(latency)
