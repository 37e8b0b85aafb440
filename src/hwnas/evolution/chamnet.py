"""ChamNet (Dai et al., CVPR 2019): predictor-based platform-aware adaptation.

Given a space, an evaluator (accuracy of an architecture) and resource budgets, ChamNet

1. builds an accuracy predictor: a Gaussian process over the architecture encoding
   (:class:`hwnas.predictors.gp.GaussianProcessPredictor`) whose training architectures are
   chosen iteratively by Bayesian optimisation: ``initial_samples`` random feasible
   architectures, then batches of ``batch_size`` picked by expected improvement
   ``EI(x) = (b - mu) Phi(u) + sigma phi(u)``, ``u = (b - mu) / sigma`` (``b`` the best measured
   value under that budget), greedily with kriging-believer fantasies
   (:mod:`hwnas.predictors.active`). EI is restricted to the budget: the candidates of a budget
   are only architectures within it;
2. prices architectures with resource predictors used as hard budgets (LUT, device tables,
   energy predictor, FLOPs, NB201 device columns: :mod:`hwnas.cost.budget`);
3. proposes candidates with the adaptive GA (:mod:`hwnas.evolution.ga`) maximising EI under each
   budget when the space is too large to enumerate (ChamNet, FBNet), or takes every feasible
   architecture when it is small (NAS-Bench-201's 15,625 cells).

The GP models ``log(100 - accuracy)`` (``target="log_error"``): errors of good networks differ by
factors, and the ~10 % accuracy of broken cells stops dominating the fit. The answer per budget is
the best *evaluated* feasible architecture (never an unevaluated prediction). BO is anytime: the
first ``n`` evaluations of a run with ``evaluations = N`` are the run with ``evaluations = n``,
since nothing before step ``n`` depends on ``N``.

Run folder (optional, :mod:`hwnas.runs`): ``config.json``, ``history.jsonl`` (one line per
evaluation, appended after each batch) and ``result.json``. A killed run resumed on the same
folder replays from ``history.jsonl``: every random draw is a function of ``(seed, round)`` and
GP fits are deterministic, so it re-derives the same picks and reads their stored accuracies
instead of evaluating them again. Resumed with a larger ``evaluations``, it continues the search.
"""


from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy.stats import kendalltau

from hwnas import settings
from hwnas.cost.budget import Budget, make_budgets
from hwnas.errors import HwnasError
from hwnas.evolution.config import ChamNetConfig
from hwnas.evolution.ga import adaptive_ga, pareto_front, sample_feasible
from hwnas.predictors.active import expected_improvement, greedy_batch
from hwnas.predictors.gp import GaussianProcessPredictor
from hwnas.runs import RunFolder, first_difference, open_run

logger = logging.getLogger(__name__)

@dataclass
class ChamNetResult:
    """Best feasible evaluated architecture per budget, Pareto front, every evaluation."""

    budgets: list[str]
    best: list[dict[str, Any] | None]
    pareto: list[dict[str, Any]]
    evaluations: list[dict[str, Any]]
    predictor: dict[str, Any]
    seconds: float
    phases: list[dict[str, Any]] = field(default_factory=list)

    def best_within(self, budget_index: int, count: int) -> dict[str, Any] | None:
        """The answer of the same run stopped after ``count`` evaluations (BO is anytime)."""
        feasible = [e for e in self.evaluations[:count] if e["feasible"][budget_index]]
        return max(feasible, key=lambda e: e["accuracy"]) if feasible else None

    def to_dict(self) -> dict[str, Any]:
        return {"budgets": self.budgets, "best": self.best, "pareto": self.pareto,
                "predictor": self.predictor, "seconds": self.seconds, "phases": self.phases,
                "evaluations": self.evaluations}


class Recorder:
    """Evaluations in order, appended to the run folder's history and replayed from it on
    resume (no stored evaluation is evaluated again)."""

    def __init__(self, folder: RunFolder | None) -> None:
        self.folder, self.entries = folder, []
        stored = folder.read_history() if folder is not None else []
        self.replay = {tuple(entry["choices"]): entry for entry in stored}
        self.written = len(stored)
        if stored:
            logger.info("resuming %s: %d stored evaluations", folder.root, len(stored))

    def evaluate(self, evaluator: Any, choices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, reports = np.full(len(choices), np.nan), np.full(len(choices), np.nan)
        missing = []
        for row, choice in enumerate(choices):
            stored = self.replay.get(tuple(int(c) for c in choice))
            if stored is None:
                missing.append(row)
            else:
                values[row] = stored["accuracy"]
                reports[row] = np.nan if stored["report"] is None else stored["report"]
        if missing:
            values[missing] = np.asarray(evaluator.evaluate(choices[missing]), dtype=float)
            report = evaluator.report(choices[missing])
            if report is not None:
                reports[missing] = np.asarray(report, dtype=float)
        if not np.isfinite(values).all():
            raise HwnasError(f"evaluator {evaluator.name!r} returned non-finite accuracies")
        return values, reports

    def add(self, entries: list[dict[str, Any]]) -> None:
        self.entries.extend(entries)
        if self.folder is not None and len(self.entries) > self.written:
            self.folder.append_history(self.entries[self.written:])
            self.written = len(self.entries)


class Search:
    """State of one ChamNet run (kept in a class so each phase is a short method)."""

    def __init__(self, space: Any, evaluator: Any, budgets: list[Budget], config: ChamNetConfig,
                 encoder: Callable[[np.ndarray], np.ndarray], recorder: Recorder) -> None:
        self.space, self.evaluator, self.budgets = space, evaluator, budgets
        self.config, self.encoder, self.recorder = config, encoder, recorder
        self.decisions = space.decisions
        self.choices = np.zeros((0, self.decisions.count), dtype=np.int64)
        self.values = np.zeros(0)
        self.feasible = np.zeros((0, len(budgets)), dtype=bool)
        self.pool = self.pool_feasible = None
        self.kernel = None  # hyper-parameters of the previous round's GP (warm start)
        if self.decisions.size <= config.enumerate_limit:
            self.pool = self.decisions.enumerate()
            self.pool_feasible = np.stack([b.feasible(self.pool) for b in budgets], axis=1)
            for index, budget in enumerate(budgets):
                if not self.pool_feasible[:, index].any():
                    costs = budget.costs(self.pool)
                    raise budget.infeasible_error(costs.min(axis=0), len(self.pool))

    def rng(self, round_index: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, round_index])

    def to_model(self, accuracy: np.ndarray) -> np.ndarray:
        if self.config.target == "log_error":
            return np.log(np.clip(100.0 - np.asarray(accuracy), 1e-3, None))
        return -np.asarray(accuracy, dtype=float)

    def to_accuracy(self, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.config.target == "log_error":
            error = np.exp(mean)
            return 100.0 - error, error * std
        return -mean, std

    def initial(self, count: int) -> np.ndarray:
        """``count`` random feasible architectures, budgets taking turns."""
        rng, picks, taken = self.rng(0), [], set()
        for index in range(count):
            budget_index = index % len(self.budgets)
            if self.pool is not None:
                rows = np.flatnonzero(self.pool_feasible[:, budget_index])
                rows = [r for r in rng.permutation(rows)[: len(taken) + 1]
                        if self.pool[r].tobytes() not in taken][:1]
                candidate = self.pool[rows[0]]
            else:
                candidate = sample_feasible(self.decisions, self.budgets[budget_index], 1,
                                            rng, exclude=taken)[0]
            taken.add(candidate.tobytes())
            picks.append(candidate)
        return np.array(picks, dtype=np.int64)

    def fit(self, round_index: int) -> GaussianProcessPredictor:
        predictor = GaussianProcessPredictor(seed=self.config.seed + round_index, restarts=0,
                                             start_kernel=self.kernel)
        predictor.fit(self.encoder(self.choices), self.to_model(self.values))
        self.kernel = predictor.kernel_state
        return predictor

    def incumbent(self, predictor: GaussianProcessPredictor, budget_index: int) -> float:
        mask = self.feasible[:, budget_index]
        values = self.values[mask] if mask.any() else self.values
        return float(np.min(predictor.to_model_space(self.to_model(values))))

    def candidates(self, predictor: GaussianProcessPredictor, budget_index: int,
                   round_index: int, excluded: set[bytes]) -> np.ndarray:
        """Unevaluated feasible candidates of one budget: enumerated, or proposed by the GA."""
        if self.pool is not None:
            rows = self.pool[self.pool_feasible[:, budget_index]]
        else:
            best = self.incumbent(predictor, budget_index)

            def acquisition(choices: np.ndarray) -> np.ndarray:
                mean, std = predictor.model_posterior(self.encoder(choices))
                return expected_improvement(mean, std, best)

            mask = self.feasible[:, budget_index]
            result = adaptive_ga(self.decisions, acquisition, [self.budgets[budget_index]],
                                 rng=self.rng(1000 + round_index), config=self.config.ga,
                                 initial=self.choices[mask])
            history = result.history
            rows = history["choices"][history["feasible"].astype(bool)]
            rows = np.unique(rows, axis=0)
        keys = np.array([row.tobytes() not in excluded for row in rows], dtype=bool)
        rows = rows[keys] if len(rows) else rows
        if len(rows) > self.config.pool_size and self.pool is None:
            mean, std = predictor.model_posterior(self.encoder(rows))
            score = expected_improvement(mean, std, self.incumbent(predictor, budget_index))
            rows = rows[np.argsort(-score, kind="stable")[: self.config.pool_size]]
        return rows

    def propose(self, predictor: GaussianProcessPredictor, count: int, round_index: int
                ) -> np.ndarray:
        """``count`` picks by EI under each budget in turn (kriging-believer batches)."""
        shares = [count // len(self.budgets) + (i < count % len(self.budgets))
                  for i in range(len(self.budgets))]
        excluded, picks = {row.tobytes() for row in self.choices}, []
        for budget_index, share in enumerate(shares):
            if share == 0:
                continue
            rows = self.candidates(predictor, budget_index, round_index, excluded)
            if len(rows) == 0:
                continue
            chosen = greedy_batch(predictor, self.encoder(rows), share, "expected_improvement",
                                  self.incumbent(predictor, budget_index), 1.0)
            for position in chosen:
                picks.append(rows[position])
                excluded.add(rows[position].tobytes())
        return np.array(picks, dtype=np.int64).reshape(-1, self.decisions.count)

    def record(self, picks: np.ndarray, phase: str, round_index: int,
               predictor: GaussianProcessPredictor | None) -> None:
        if predictor is not None:
            mean, std = predictor.predict(self.encoder(picks), return_std=True)
            predicted_mean, predicted_std = self.to_accuracy(mean, std)
        else:
            predicted_mean = predicted_std = np.full(len(picks), np.nan)
        values, reports = self.recorder.evaluate(self.evaluator, picks)
        costs = [budget.costs(picks) for budget in self.budgets]
        feasible = np.stack([b.feasible(picks, c) for b, c in zip(self.budgets, costs)], axis=1)
        entries = []
        for row in range(len(picks)):
            entries.append({
                "index": len(self.values) + row, "phase": phase, "round": round_index,
                "choices": [int(c) for c in picks[row]],
                "arch": self.space.format(picks[row]),
                "accuracy": float(values[row]),
                "report": None if np.isnan(reports[row]) else float(reports[row]),
                "predicted_mean": None if np.isnan(predicted_mean[row])
                else float(predicted_mean[row]),
                "predicted_std": None if np.isnan(predicted_std[row])
                else float(predicted_std[row]),
                "costs": [[float(v) for v in c[row]] for c in costs],
                "feasible": [bool(v) for v in feasible[row]],
            })
        self.recorder.add(entries)
        self.choices = np.concatenate([self.choices, picks])
        self.values = np.concatenate([self.values, values])
        self.feasible = np.concatenate([self.feasible, feasible])


def predictor_quality(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Prospective quality: predictions made *before* each BO pick was evaluated."""
    pairs = [(e["predicted_mean"], e["accuracy"]) for e in entries
             if e["predicted_mean"] is not None]
    if len(pairs) < 3:
        return {"points": len(pairs), "kendall_tau": None, "rmse": None}
    predicted, measured = np.array(pairs).T
    tau = kendalltau(predicted, measured)[0]
    return {"points": len(pairs), "kendall_tau": None if np.isnan(tau) else float(tau),
            "rmse": float(np.sqrt(np.mean((predicted - measured) ** 2))),
            "what": "GP predictions of BO picks before they were evaluated"}


def run_config(space: Any, evaluator: Any, budgets: Sequence[Budget],
               config: ChamNetConfig) -> dict[str, Any]:
    """What ``config.json`` records (and a resume compares: every setting that changes the
    search, ``evaluations`` excluded)."""
    return {"method": "chamnet", "space": space.name, "evaluator": evaluator.name,
            "budgets": [budget.name for budget in budgets], **settings.to_dict(config)}


def same_search(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    others = ("method", "space", "evaluator", "budgets")
    return first_difference({key: saved.get(key) for key in others},
                            {key: current.get(key) for key in others}) \
        or settings.resume_difference(ChamNetConfig, saved, current)


def run_chamnet(space: Any, evaluator: Any, budgets: Sequence[Any],
                config: ChamNetConfig | None = None, *, run_dir: str | Path | None = None,
                resume: bool = False, encoder: Callable[[np.ndarray], np.ndarray] | None = None,
                on_progress: Callable[[int, int], None] | None = None) -> ChamNetResult:
    """Run ChamNet (module docstring) for ``config.evaluations`` evaluated architectures;
    ``encoder`` (default ``space.encode``) gives the GP's features of a choice matrix."""
    config = config or ChamNetConfig()
    started = time.perf_counter()
    budget_list = make_budgets(budgets, space)
    folder = None if run_dir is None else open_run(
        run_dir, command="chamnet", config=run_config(space, evaluator, budget_list, config),
        resume=resume, compare=same_search)
    try:
        result = _search(space, evaluator, budget_list, config, encoder or space.encode,
                         Recorder(folder), on_progress, started)
        if folder is not None:
            folder.write_result({key: value for key, value in result.to_dict().items()
                                 if key != "evaluations"})
        return result
    finally:
        if folder is not None:
            folder.close()


def _search(space: Any, evaluator: Any, budgets: list[Budget], config: ChamNetConfig,
            encoder: Callable[[np.ndarray], np.ndarray], recorder: Recorder,
            on_progress: Callable[[int, int], None] | None, started: float) -> ChamNetResult:
    search = Search(space, evaluator, budgets, config, encoder, recorder)
    evaluations = config.evaluations
    phases = []
    search.record(search.initial(min(config.initial_samples, evaluations)), "initial", 0, None)
    phases.append({"phase": "initial", "evaluated": len(search.values),
                   "seconds": time.perf_counter() - started})
    logger.info("ChamNet initial: %d random feasible architectures evaluated",
                len(search.values))
    round_index = 0
    while len(search.values) < evaluations:
        round_index += 1
        phase_start = time.perf_counter()
        predictor = search.fit(round_index)
        picks = search.propose(predictor, min(config.batch_size,
                                              evaluations - len(search.values)), round_index)
        if len(picks) == 0:
            logger.info("ChamNet: no unevaluated feasible candidate left")
            break
        search.record(picks, "bo", round_index, predictor)
        phases.append({"phase": f"bo round {round_index}", "evaluated": len(search.values),
                       "seconds": time.perf_counter() - phase_start})
        logger.info("ChamNet BO round %d: %d evaluated, best %.4g", round_index,
                    len(search.values), float(search.values.max()))
        if on_progress is not None:
            on_progress(len(search.values), evaluations)
    return _result(search, recorder.entries, budgets, phases, started)


def _result(search: Search, entries: list[dict[str, Any]], budgets: list[Budget],
            phases: list[dict[str, Any]], started: float) -> ChamNetResult:
    best = []
    for index, budget in enumerate(budgets):
        feasible = [e for e in entries if e["feasible"][index]]
        best.append(dict(max(feasible, key=lambda e: e["accuracy"]), budget=budget.name)
                    if feasible else None)
    first_cost = np.array([e["costs"][0][0] for e in entries])
    accuracy = np.array([e["accuracy"] for e in entries])
    front = pareto_front(accuracy, first_cost)
    pareto = [{"arch": entries[i]["arch"], "choices": entries[i]["choices"],
               "accuracy": entries[i]["accuracy"], "report": entries[i]["report"],
               "cost": float(first_cost[i])} for i in front]
    quality = predictor_quality(entries)
    quality["training_points"] = len(entries)
    return ChamNetResult([b.name for b in budgets], best, pareto, entries, quality,
                         time.perf_counter() - started, phases)


def plot_pareto(result: ChamNetResult, path: str | Path, *, cost_label: str = "cost") -> Path:
    """Scatter of every evaluated architecture (accuracy vs first constraint) with the front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4.2))
    cost = [e["costs"][0][0] for e in result.evaluations]
    axes.scatter(cost, [e["accuracy"] for e in result.evaluations], s=12, alpha=0.5,
                 label="evaluated")
    axes.plot([p["cost"] for p in result.pareto], [p["accuracy"] for p in result.pareto],
              "r.-", label="Pareto front")
    for best in result.best:
        if best is not None:
            axes.scatter([best["costs"][0][0]], [best["accuracy"]], marker="*", s=120,
                         color="k", zorder=3)
    axes.set_xlabel(cost_label)
    axes.set_ylabel("accuracy (%)")
    axes.set_title("ChamNet: evaluated architectures (stars: answer per budget)")
    axes.legend()
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp.png")
    figure.savefig(temporary, dpi=120)
    plt.close(figure)
    temporary.replace(path)
    return path
