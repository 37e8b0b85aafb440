"""ChamNet end to end: NB201 (tabular), resume, and the GA-proposed path on the ChamNet space."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwnas.cost.flops import FlopsCost
from hwnas.cost.device_table import NB201Latency
from hwnas.data.tables import nb201_latency
from hwnas.errors import HwnasError
from hwnas.evolution.chamnet import run_chamnet
from hwnas.evolution.config import ChamNetConfig
from hwnas.evolution.evaluators import NB201Evaluator
from hwnas.spaces import get_space

DEVICE = "hwnb_cifar10_raspi4_latency_ms"


@pytest.fixture(scope="module")
def evaluator():
    return NB201Evaluator("cifar10_test_200ep")


def test_returns_a_feasible_evaluated_arch_and_resumes(evaluator, tmp_path):
    latency = nb201_latency(DEVICE)
    limits = [float(np.percentile(latency, p)) for p in (25, 75)]
    budgets = [(NB201Latency(DEVICE), limit) for limit in limits]
    config = ChamNetConfig(evaluations=30, initial_samples=10, batch_size=5, seed=1)
    result = run_chamnet(evaluator.space, evaluator, budgets, config, run_dir=tmp_path)
    assert len(result.evaluations) == 30
    for best, limit in zip(result.best, limits):
        assert best["costs"][0][0] <= limit
        index = evaluator.indices(np.array([best["choices"]]))[0]
        assert latency[index] <= limit
        assert best["accuracy"] == evaluator.evaluate(np.array([best["choices"]]))[0]
    # the answer is at least as good as the random start, and BO picks carry predictions
    assert result.best[0]["accuracy"] >= max(e["accuracy"] for e in result.evaluations[:10]
                                             if e["feasible"][0])
    assert all(e["predicted_mean"] is not None for e in result.evaluations[10:])
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert len(lines) == 30 and json.loads((tmp_path / "result.json").read_text())["best"]

    # Resume after a "kill" that lost the last 12 evaluations: same answer, no re-evaluation
    # of the 18 stored ones.
    (tmp_path / "history.jsonl").write_text("\n".join(lines[:18]) + "\n")
    calls = []

    class Counting(NB201Evaluator):
        def evaluate(self, choices):
            calls.append(len(choices))
            return super().evaluate(choices)

    again = run_chamnet(evaluator.space, Counting("cifar10_test_200ep"), budgets, config,
                        run_dir=tmp_path, resume=True)
    assert sum(calls) == 12
    assert [e["choices"] for e in again.evaluations] == [e["choices"] for e in result.evaluations]


def test_changed_config_refuses_the_run_dir(evaluator, tmp_path):
    budget = (NB201Latency(DEVICE), 20.0)
    run_chamnet(evaluator.space, evaluator, [budget], ChamNetConfig(evaluations=12),
                run_dir=tmp_path)
    with pytest.raises(HwnasError, match="'seed' differs"):
        run_chamnet(evaluator.space, evaluator, [budget], ChamNetConfig(evaluations=12, seed=5),
                    run_dir=tmp_path, resume=True)


def test_infeasible_budget_raises(evaluator):
    with pytest.raises(HwnasError, match="infeasible.*smallest seen"):
        run_chamnet(evaluator.space, evaluator, [(NB201Latency(DEVICE), 1e-9)],
                    ChamNetConfig(evaluations=12))


class FlopsProxyEvaluator:
    """Synthetic, known-answer accuracy for the GA path: more MFLOPs = more accurate."""

    name = "flops-proxy"

    def __init__(self, space):
        self.cost = FlopsCost().choice_cost(space)

    def evaluate(self, choices):
        return 100.0 - 50.0 / np.sqrt(self.cost(choices))

    def report(self, choices):
        return None


def test_ga_proposed_candidates_on_the_chamnet_space():
    space = get_space("chamnet-cifar")
    evaluator = FlopsProxyEvaluator(space)
    limit = 40.0
    config = ChamNetConfig(evaluations=20, initial_samples=8, batch_size=6, seed=0,
                           ga_population=24, ga_generations=8, pool_size=200)
    result = run_chamnet(space, evaluator, [(FlopsCost(), limit)], config)
    best = result.best[0]
    assert best["costs"][0][0] <= limit
    assert FlopsCost().cost(space.to_arch(best["choices"])) == pytest.approx(best["costs"][0][0])
    start = max(e["accuracy"] for e in result.evaluations[:8])
    assert best["accuracy"] > start  # BO on GA-proposed candidates improved on random
