"""The theta steps on problems with known answers (fake supernets whose CE is set by hand)."""

import pytest
import torch
from torch import nn

from hwnas.dnas.loss import LossSettings
from hwnas.dnas.steps import reinforce_theta_step


class ScoredPaths(nn.Module):
    """A stand-in supernet: 4 layers x 3 candidates; the logits put ``confidence`` on the true
    class for every layer that took candidate ``good[layer]``, so CE falls with each good choice."""

    def __init__(self, good: list[int]) -> None:
        super().__init__()
        self.good = good
        self.theta = nn.Parameter(torch.zeros(len(good), 3))

    def logits(self) -> torch.Tensor:
        return self.theta

    def run(self, images, sample, mode):
        return self(images, sample.soft, sample.indices.tolist())

    def forward(self, images, weights, indices):
        hits = sum(int(index == good) for index, good in zip(indices, self.good))
        output = torch.zeros(len(images), 5)
        output[:, 0] = 0.5 * hits
        return output


def run_steps(net, matrix, *, beta, target=None, target_form="budget", steps=150):
    optimizer = torch.optim.Adam([net.theta], lr=0.05)
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.zeros(8, 3, 2, 2), torch.zeros(8, dtype=torch.long)
    for _ in range(steps):
        reinforce_theta_step(net, optimizer, images, labels, paths=4, generator=generator,
                             latency=lambda weights: (weights * matrix).sum(),
                             loss=LossSettings(0.2, beta, target, target_form))
    return torch.softmax(net.theta.detach(), dim=-1)


def test_reinforce_finds_the_candidates_that_lower_the_loss():
    good = [2, 0, 1, 2]
    probabilities = run_steps(ScoredPaths(good), torch.ones(4, 3), beta=0.0)
    assert probabilities.argmax(dim=1).tolist() == good
    assert (probabilities[torch.arange(4), good] > 0.7).all()


def test_reinforce_latency_term_is_the_exact_expectation_and_trades_against_ce():
    # Candidate 0 helps CE but costs 10x; a steep latency term must win, beta 0 must not.
    matrix = torch.tensor([[10.0, 1.0, 1.0]] * 4)
    cheap = run_steps(ScoredPaths([0, 0, 0, 0]), matrix, beta=3.0, target=4.0)
    assert (cheap[:, 0] < 0.2).all()
    accurate = run_steps(ScoredPaths([0, 0, 0, 0]), matrix, beta=0.0)
    assert (accurate[:, 0] > 0.7).all()


def test_reinforce_with_an_absolute_target_lands_on_it():
    probabilities = run_steps(ScoredPaths([1, 1, 1, 1]), torch.tensor([[1.0, 2.0, 4.0]] * 4),
                              beta=2.0, target=12.0, target_form="absolute", steps=300)
    expected = float((probabilities * torch.tensor([1.0, 2.0, 4.0])).sum())
    assert expected == pytest.approx(12.0, rel=0.1)
