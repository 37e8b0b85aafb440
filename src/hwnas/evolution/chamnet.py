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
   energy predictor, FLOPs, NB201 device columns: :mod:`hwnas.evolution.costs`);
3. proposes candidates with the adaptive GA (:mod:`hwnas.evolution.ga`) maximising EI under each
   budget when the space is too large to enumerate (ChamNet, FBNet), or takes every feasible
   architecture when it is small (NAS-Bench-201's 15,625 cells).

The GP models ``log(100 - accuracy)`` (``target="log_error"``): errors of good networks differ by
factors, and the ~10 % accuracy of broken cells stops dominating the fit. The answer per budget is
the best *evaluated* feasible architecture (never an unevaluated prediction). BO is anytime: the
first ``n`` evaluations of a run with ``evaluations = N`` are the run with ``evaluations = n``,
since nothing before step ``n`` depends on ``N``.

Run directory (optional): ``config.json``, ``history.jsonl`` (one line per evaluation, rewritten
atomically after each batch) and ``result.json``. A killed run restarted on the same directory
replays from ``history.jsonl``: every random draw is a function of ``(seed, round)`` and GP fits
are deterministic, so it re-derives the same picks and reads their stored accuracies instead of
evaluating them again.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy.stats import kendalltau

from hwnas.errors import HwnasError
from hwnas.evolution.costs import Budget, make_budgets
from hwnas.evolution.ga import GAConfig, adaptive_ga, cardinalities_of, pareto_front, \
    sample_feasible
from hwnas.io import atomic_write_json, atomic_write_text, read_json
from hwnas.predictors.active import greedy_batch, expected_improvement
from hwnas.predictors.gp import GaussianProcessPredictor, one_hot_choices

logger = logging.getLogger(__name__)

TARGETS = ("log_error", "accuracy")


def describe_choices(space: Any, choices: Sequence[int]) -> str:
    """A readable id: the NB201 string, or the compact ArchSpec string."""
    if hasattr(space, "format"):
        return space.format(choices)
    return space.to_arch(choices).to_string()


def default_encoder(space: Any, evaluator: Any) -> Callable[[np.ndarray], np.ndarray]:
    if hasattr(evaluator, "encode"):
        return evaluator.encode
    if hasattr(space, "encode_many") and hasattr(space, "cardinalities"):
        return space.encode_many
    return lambda choices: one_hot_choices(np.asarray(choices), space.num_candidates)


def enumerate_choices(cardinalities: np.ndarray) -> np.ndarray:
    """Every choice vector of a small space, ``[prod(cardinalities), D]``."""
    grids = np.indices(tuple(int(c) for c in cardinalities)).reshape(len(cardinalities), -1)
    return grids.T.astype(np.int64)


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


class _Recorder:
    """Evaluations in order, replayed from a previous ``history.jsonl`` when resuming."""

    def __init__(self, run_dir: Path | None, config: dict[str, Any]) -> None:
        self.run_dir, self.entries, self.replay = run_dir, [], {}
        if run_dir is None:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path = run_dir / "config.json"
        if config_path.exists():
            stored = read_json(config_path, "run config")
            if stored != json.loads(json.dumps(config)):
                raise HwnasError(f"{config_path} holds a different search configuration: use "
                                 f"another run directory to start a new search")
            history = run_dir / "history.jsonl"
            if history.exists():
                for line in history.read_text().splitlines():
                    if line.strip():
                        entry = json.loads(line)
                        self.replay[tuple(entry["choices"])] = entry
                logger.info("resuming %s: %d stored evaluations", run_dir, len(self.replay))
        else:
            atomic_write_json(config_path, config)

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
        if self.run_dir is not None:
            text = "".join(json.dumps(entry) + "\n" for entry in self.entries)
            atomic_write_text(self.run_dir / "history.jsonl", text)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise HwnasError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class _WarmStartedGP(GaussianProcessPredictor):
    """The GP predictor, its marginal-likelihood search started from the previous round's
    hyper-parameters (a few points more barely move them: far fewer L-BFGS steps)."""

    def __init__(self, kernel: Any, **options: Any) -> None:
        super().__init__(**options)
        self._start_kernel = kernel

    def initial_kernel(self, X: np.ndarray) -> Any:
        if self._start_kernel is None:
            return super().initial_kernel(X)
        return self._start_kernel


class _Search:
    """State of one ChamNet run (kept in a class so each phase is a short method)."""

    def __init__(self, space: Any, evaluator: Any, budgets: list[Budget], *, target: str,
                 encoder: Callable[[np.ndarray], np.ndarray], seed: int,
                 recorder: _Recorder, ga_config: GAConfig, pool_size: int,
                 enumerate_limit: int) -> None:
        self.space, self.evaluator, self.budgets = space, evaluator, budgets
        self.target, self.encoder, self.seed, self.recorder = target, encoder, seed, recorder
        self.ga_config, self.pool_size = ga_config, pool_size
        self.cardinalities = cardinalities_of(space)
        self.choices = np.zeros((0, len(self.cardinalities)), dtype=np.int64)
        self.values = np.zeros(0)
        self.feasible = np.zeros((0, len(budgets)), dtype=bool)
        self.predicted: list[tuple[float, float]] = []
        self.pool = self.pool_feasible = None
        self.kernel = None  # hyper-parameters of the previous round's GP (warm start)
        size = int(np.prod(self.cardinalities.astype(float)))
        if size <= enumerate_limit:
            self.pool = enumerate_choices(self.cardinalities)
            self.pool_feasible = np.stack([b.feasible(self.pool) for b in budgets], axis=1)
            for index, budget in enumerate(budgets):
                if not self.pool_feasible[:, index].any():
                    costs = budget.costs(self.pool)
                    raise budget.infeasible_error(costs.min(axis=0), len(self.pool))

    def rng(self, round_index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, round_index])

    def to_model(self, accuracy: np.ndarray) -> np.ndarray:
        if self.target == "log_error":
            return np.log(np.clip(100.0 - np.asarray(accuracy), 1e-3, None))
        return -np.asarray(accuracy, dtype=float)

    def to_accuracy(self, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.target == "log_error":
            error = np.exp(mean)
            return 100.0 - error, error * std
        return -mean, std

    def _evaluated_keys(self) -> set[bytes]:
        return {row.tobytes() for row in self.choices}

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
                candidate = sample_feasible(self.cardinalities, self.budgets[budget_index], 1,
                                            rng, exclude=taken)[0]
            taken.add(candidate.tobytes())
            picks.append(candidate)
        return np.array(picks, dtype=np.int64)

    def fit(self, round_index: int) -> GaussianProcessPredictor:
        predictor = _WarmStartedGP(self.kernel, seed=self.seed + round_index, restarts=0)
        predictor.fit(self.encoder(self.choices), self.to_model(self.values))
        self.kernel = predictor._require_fitted().kernel_
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
            result = adaptive_ga(self.cardinalities, acquisition, [self.budgets[budget_index]],
                                 rng=self.rng(1000 + round_index), config=self.ga_config,
                                 initial=self.choices[mask])
            history = result.history
            rows = history["choices"][history["feasible"].astype(bool)]
            rows = np.unique(rows, axis=0)
        keys = np.array([row.tobytes() not in excluded for row in rows], dtype=bool)
        rows = rows[keys] if len(rows) else rows
        if len(rows) > self.pool_size and self.pool is None:
            mean, std = predictor.model_posterior(self.encoder(rows))
            score = expected_improvement(mean, std, self.incumbent(predictor, budget_index))
            rows = rows[np.argsort(-score, kind="stable")[: self.pool_size]]
        return rows

    def propose(self, predictor: GaussianProcessPredictor, count: int, round_index: int
                ) -> np.ndarray:
        """``count`` picks by EI under each budget in turn (kriging-believer batches)."""
        shares = [count // len(self.budgets) + (i < count % len(self.budgets))
                  for i in range(len(self.budgets))]
        excluded, picks = self._evaluated_keys(), []
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
        return np.array(picks, dtype=np.int64).reshape(-1, len(self.cardinalities))

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
                "arch": describe_choices(self.space, picks[row]),
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


def run_chamnet(space: Any, evaluator: Any, budgets: Sequence[Any], *, evaluations: int,
                initial_samples: int = 10, batch_size: int = 5, seed: int = 0,
                run_dir: str | Path | None = None, target: str = "log_error",
                encoder: Callable[[np.ndarray], np.ndarray] | None = None,
                ga_config: GAConfig | None = None, pool_size: int = 2000,
                enumerate_limit: int = 50_000,
                on_progress: Callable[[int, int], None] | None = None) -> ChamNetResult:
    """Run ChamNet (module docstring) for ``evaluations`` evaluated architectures."""
    evaluations = _check_int("evaluations", evaluations, 2)
    initial_samples = min(_check_int("initial_samples", initial_samples, 2), evaluations)
    batch_size = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0)
    if target not in TARGETS:
        raise HwnasError(f"unknown target {target!r} (known: {', '.join(TARGETS)})")
    started = time.perf_counter()
    budget_list = make_budgets(budgets, space)
    ga_config = ga_config or GAConfig(population=64, generations=25)
    config = {"method": "chamnet", "space": getattr(space, "name", str(space)),
              "evaluator": evaluator.name, "budgets": [b.name for b in budget_list],
              "evaluations": evaluations, "initial_samples": initial_samples,
              "batch_size": batch_size, "seed": seed, "target": target, "pool_size": pool_size}
    recorder = _Recorder(None if run_dir is None else Path(run_dir), config)
    search = _Search(space, evaluator, budget_list, target=target,
                     encoder=encoder or default_encoder(space, evaluator), seed=seed,
                     recorder=recorder, ga_config=ga_config, pool_size=pool_size,
                     enumerate_limit=enumerate_limit)
    phases = []
    search.record(search.initial(initial_samples), "initial", 0, None)
    phases.append({"phase": "initial", "evaluated": len(search.values),
                   "seconds": time.perf_counter() - started})
    logger.info("ChamNet initial: %d random feasible architectures evaluated", initial_samples)
    round_index = 0
    while len(search.values) < evaluations:
        round_index += 1
        phase_start = time.perf_counter()
        predictor = search.fit(round_index)
        picks = search.propose(predictor, min(batch_size, evaluations - len(search.values)),
                               round_index)
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
    result = _result(search, recorder.entries, budget_list, phases, started)
    if run_dir is not None:
        atomic_write_json(Path(run_dir) / "result.json",
                          {key: value for key, value in result.to_dict().items()
                           if key != "evaluations"})
    return result


def _result(search: _Search, entries: list[dict[str, Any]], budgets: list[Budget],
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
