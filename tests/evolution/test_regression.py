"""Fixed-seed runs of the evolutionary searches give the choices recorded in
``tests/evolution/regression.json`` (written by the code before the one-design refactor): random
search and regularized evolution on tabular NB201, the adaptive GA on the FBNet CIFAR space and
ChamNet's GA-proposed path on the ChamNet CIFAR space. To re-record after an intended change:
``HWNAS_WRITE_REGRESSION=1 pytest tests/evolution/test_regression.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from hwnas.cost.budget import make_budgets
from hwnas.cost.device_table import NB201Latency
from hwnas.cost.flops import FlopsCost
from hwnas.evolution.baselines import random_search, regularized_evolution
from hwnas.evolution.chamnet import run_chamnet
from hwnas.evolution.config import ChamNetConfig
from hwnas.evolution.evaluators import NB201Evaluator
from hwnas.evolution.config import GAConfig
from hwnas.evolution.ga import adaptive_ga
from hwnas.spaces import get_space

RECORDED = Path(__file__).parent / "regression.json"
DEVICE = "hwnb_cifar10_pixel3_latency_ms"


class SyntheticAccuracy:
    """A deterministic stand-in for training: more MFLOPs in later groups is better."""

    name = "synthetic"

    def __init__(self, space):
        self.space = space

    def evaluate(self, choices):
        choices = np.atleast_2d(choices)
        weights = np.linspace(0.5, 1.5, choices.shape[1])
        return 60 + (choices * weights).sum(axis=1) / 2

    def report(self, choices):
        return None


def runs() -> dict[str, list]:
    evaluator = NB201Evaluator("cifar10valid_valid_12ep", report_column="cifar10_test_200ep")
    latency = NB201Latency(DEVICE)
    outcome = {}
    for method, search in (("random", random_search), ("rea", regularized_evolution)):
        result = search(evaluator.space, evaluator, (latency, 20.0), evaluations=40, seed=5)
        outcome[method] = result.choices.tolist()
    fbnet = get_space("fbnet-cifar")
    budgets = make_budgets([(FlopsCost(), 120.0)], fbnet)
    flops = budgets[0].constraints[0].cost
    ga = adaptive_ga(fbnet.decisions, lambda c: -np.abs(flops(c) - 100.0), budgets,
                     rng=np.random.default_rng(4), config=GAConfig(population=16, generations=6))
    outcome["ga"] = [row.tolist() for row in ga.best_choices] + ga.pareto_choices.tolist()
    chamnet_space = get_space("chamnet-cifar")
    config = ChamNetConfig(evaluations=14, initial_samples=6, batch_size=4, seed=3,
                           ga_population=16, ga_generations=4)
    result = run_chamnet(chamnet_space, SyntheticAccuracy(chamnet_space), [(FlopsCost(), 60.0)],
                         config)
    outcome["chamnet"] = [entry["choices"] for entry in result.evaluations]
    return outcome


def test_searches_make_the_recorded_choices():
    outcome = runs()
    if os.environ.get("HWNAS_WRITE_REGRESSION"):
        RECORDED.write_text(json.dumps(outcome) + "\n")
    recorded = json.loads(RECORDED.read_text())
    assert set(recorded) == set(outcome)
    for name in recorded:
        assert outcome[name] == recorded[name], name


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
