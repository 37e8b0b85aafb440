"""One optimisation step of each DNAS phase, for any supernet and cost (the problem's), and the
checks on the ``(images, labels)`` batches they take.

A supernet here has ``theta``, ``logits()`` (theta with the fixed options masked), ``run(images,
sample, mode)``, ``mixing_weights(sample, mode)`` and ``weight_parameters()``
(:class:`~hwnas.dnas.supernet.SuperNet`, :class:`~hwnas.dnas.masking.MaskedSuperNet`); a latency
is a differentiable function of mixing weights (rows = decisions).

``weight_step``: draw Gumbel weights with theta fixed, forward, CE, SGD step of the weights.
``theta_step``: draw Gumbel weights (differentiable in theta), forward, the latency-aware loss
(:mod:`hwnas.dnas.loss`) with LAT computed from the same mixing weights the forward used, Adam
step of theta only.
``reinforce_theta_step``: the same loss with a score-function (REINFORCE) gradient of the CE
factor instead of the Gumbel straight-through one (docstring there).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Union

import torch
import torch.nn.functional as F

from hwnas.dnas.loss import LossSettings
from hwnas.dnas.supernet import GumbelSample, gumbel_softmax_sample
from hwnas.errors import HwnasError

Batch = tuple[torch.Tensor, torch.Tensor]
#: LAT of mixing weights [D, K], differentiable
Latency = Callable[[torch.Tensor], torch.Tensor]
#: A re-iterable collection of batches (optionally with ``set_epoch``), or a callable
#: ``epoch -> iterable of batches``.
Batches = Union[Iterable[Batch], Callable[[int], Iterable[Batch]]]


def weight_step(
    supernet: Any,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float,
    generator: torch.Generator,
    mode: str,
    grad_clip_norm: float | None = None,
) -> tuple[float, int]:
    """One SGD step of the weights on CE with theta fixed; returns (CE, correct predictions).
    ``grad_clip_norm`` (0 or None: off) clips the weights' gradient norm first, as the training
    recipe does."""
    with torch.no_grad():
        sample = gumbel_softmax_sample(supernet.logits(), temperature, generator)
    logits = supernet.run(images, sample, mode)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad(set_to_none=True)  # unused candidates keep grad None: SGD skips them
    loss.backward()
    if grad_clip_norm:
        torch.nn.utils.clip_grad_norm_(supernet.weight_parameters(), grad_clip_norm)
    optimizer.step()
    return loss.item(), int((logits.argmax(dim=1) == labels).sum())


def theta_step(
    supernet: Any,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float,
    generator: torch.Generator,
    mode: str,
    latency: Latency,
    loss: LossSettings,
) -> tuple[float, float, float]:
    """One Adam step of theta on the latency-aware loss, LAT being ``latency`` of the mixing
    weights the forward pass used; returns (loss, CE, LAT)."""
    sample = gumbel_softmax_sample(supernet.logits(), temperature, generator)
    weights, indices = supernet.mixing_weights(sample, mode)
    cross_entropy = F.cross_entropy(supernet(images, weights, indices), labels)
    lat = latency(weights)
    total = loss.loss(cross_entropy, lat)
    optimizer.zero_grad(set_to_none=True)
    # Only theta's gradient: autograd then skips every conv weight gradient.
    (gradient,) = torch.autograd.grad(total, [supernet.theta])
    supernet.theta.grad = gradient
    optimizer.step()
    return total.item(), cross_entropy.item(), lat.item()


def reinforce_theta_step(
    supernet: Any,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    paths: int,
    generator: torch.Generator,
    latency: Latency,
    loss: LossSettings,
) -> tuple[float, float, float]:
    """One Adam step of theta on ``E_theta[CE] * latency_factor(E_theta[LAT])``; returns
    (loss, mean CE, E_theta[LAT]).

    ``paths`` architectures ``a_k ~ P_theta`` (one option per decision) are run (forward only)
    on the same batch and ``grad E[CE]`` is estimated with the leave-one-out baseline (Kool et
    al. 2019):

        grad E[CE] ~= 1/K * sum_k (CE(a_k) - mean_{j != k} CE(a_j)) * grad log P_theta(a_k),

    the score-function estimator TuNAS uses (Bender et al., CVPR 2020). Comparing paths on one
    batch removes the batch-to-batch noise from the comparison. Why: in ``sampled`` mode the
    straight-through gradient of a residual candidate is ``<dL/dout, x + F(x)>``, whose identity
    term is the same for every candidate and does not cancel when only one candidate runs (it
    does in ``soft`` mode), so theta drifts to whatever was sampled; and ``<dL/dout, F(x)>`` is the
    gradient of a scale the block's last BN already learns, which weight training drives to ~0.
    ``E_theta[LAT]`` is ``latency`` of ``softmax(theta)`` (exact for an additive cost) and its
    gradient analytic.
    """
    logits = supernet.logits()
    sampled: list[torch.Tensor] = []
    losses: list[torch.Tensor] = []
    with torch.no_grad():
        for _ in range(paths):
            indices = gumbel_softmax_sample(logits.detach(), 1.0, generator).indices
            one_hot = torch.zeros_like(logits).scatter_(-1, indices.unsqueeze(-1), 1.0)
            output = supernet.run(images, GumbelSample(one_hot, indices), "sampled")
            sampled.append(indices)
            losses.append(F.cross_entropy(output, labels))
    cross_entropies = torch.stack(losses)
    others_mean = (cross_entropies.sum() - cross_entropies) / (paths - 1)
    advantages = cross_entropies - others_mean
    log_probabilities = torch.log_softmax(logits, dim=-1)
    path_log_probabilities = torch.stack([
        log_probabilities.gather(1, indices.unsqueeze(-1)).sum() for indices in sampled
    ])
    policy_term = (advantages * path_log_probabilities).mean()  # its gradient ~ grad E[CE]
    lat = latency(torch.softmax(logits, dim=-1))
    factor = loss.factor(lat)
    mean_ce = cross_entropies.mean()
    surrogate = policy_term * factor.detach() + mean_ce * factor
    optimizer.zero_grad(set_to_none=True)
    (gradient,) = torch.autograd.grad(surrogate, [supernet.theta])
    supernet.theta.grad = gradient
    optimizer.step()
    return (mean_ce * factor).item(), mean_ce.item(), lat.item()


def iterate_batches(source: Batches, epoch: int, what: str) -> Iterator[Any]:
    """An iterator over epoch ``epoch``'s batches of ``source``: a callable is called with the
    epoch (a :class:`hwnas.data.batches.BatchIterator` is one: its order then depends on the
    epoch alone, so a resumed search sees the same batches); a re-iterable collection is
    iterated as it is."""
    batches = source(epoch) if callable(source) else source
    try:
        return iter(batches)
    except TypeError:
        raise HwnasError(
            f"the {what} batches must be iterable (or a callable epoch -> iterable), "
            f"got {type(batches).__name__}"
        ) from None


def batch_to_device(batch: Any, device: torch.device) -> Batch:
    """Check an ``(images, labels)`` pair and move it to ``device``, images channels_last."""
    try:
        images, labels = batch
    except (TypeError, ValueError):
        raise HwnasError("each batch must be a pair (images, labels)") from None
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        got = f"shape {tuple(images.shape)}" if isinstance(images, torch.Tensor) else repr(
            type(images).__name__)
        raise HwnasError(f"batch images must be a 4-D tensor N x C x H x W, got {got}")
    images = images.to(device, memory_format=torch.channels_last, non_blocking=True)
    return images, torch.as_tensor(labels).to(device, non_blocking=True)
