"""How well does a GP predict a measured whole-network metric from few measured architectures?

ChamNet's energy predictor is a Gaussian process trained on measured architectures chosen by
Bayesian optimisation. No energy counter exists on the development machines (see
``hwnas.cost.energy.energy_reader``), so this experiment evaluates the same predictor on real
measured whole-network metrics of the same kind: HELP's latencies on a Pixel 2 phone, a GTX 1080 Ti
and a Xeon Gold 6226, for NAS-Bench-201 cells (one-hot 6 x 5) and for 5,000 FBNet-space
architectures (one-hot 22 x 9).

Method: for each dataset a fixed test set (``test_size`` rows, seed ``test_seed``) is held out;
the rest is the pool. For each seed, each device and each training size N:

* ``gp_bo``: GP trained on the first N architectures chosen by BO with the uncertainty acquisition
  (the first ``bo_start`` of the seed's random order, then batches of ``batch_size``, each round
  scoring ``bo_candidates`` pool architectures with a GP without restarts), see
  :mod:`hwnas.predictors.active`;
* ``gp_random``: GP trained on the first N of a random permutation of the pool;
* ``gp_log_random``: the same with a log-transformed target;
* ``gp_matern_random``: the same with a Matern-only kernel (no linear term);
* ``rf_random`` / ``ridge_random``: random forest (``forest_trees`` trees) and ridge (alpha by
  LOO-CV over :data:`RIDGE_ALPHAS`) on the same encoding and the same random samples.

Reported on the test set: RMSE (ms), MAPE (%) and Kendall tau-b, median and spread over seeds.
Settings: ``configs/benchmarks/metric_predictor.yaml``. Run (a few minutes on 2 cores)::

    python -m benchmarks.experiments.metric_predictor
    python -m benchmarks.experiments.metric_predictor --quick   # smoke run

Writes ``benchmarks/results/metric_predictor.json`` and ``.png``.
"""

from __future__ import annotations

import io
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress
from scipy.stats import kendalltau
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import RidgeCV
from threadpoolctl import threadpool_limits

from benchmarks.experiments import common
from hwnas import settings
from hwnas.data.tables import load_fbnet_latency, load_nb201_latency
from hwnas.errors import HwnasError
from hwnas.io import atomic_write_bytes, atomic_write_json
from hwnas.predictors.active import select_by_bayesian_optimisation
from hwnas.predictors.gp import GaussianProcessPredictor
from hwnas.settings import check
from hwnas.spaces import get_space
from hwnas.spaces.nb201 import NB201Space

NAME = "metric_predictor"
DATASETS = ("nb201", "fbnet")
METHODS = ("gp_bo", "gp_random", "gp_log_random", "gp_matern_random", "rf_random", "ridge_random")
METRICS = ("rmse", "mape", "kendall")
#: ridge's candidate penalties (chosen by leave-one-out CV)
RIDGE_ALPHAS = np.logspace(-3, 3, 13)


@dataclass(frozen=True, kw_only=True)
class MetricPredictorConfig:
    """The ``benchmark`` section of ``configs/benchmarks/metric_predictor.yaml``."""

    datasets: tuple[str, ...] = common.required(f"Datasets, of {', '.join(DATASETS)}.")
    devices: tuple[str, ...] = common.required("HELP latency columns predicted.")
    methods: tuple[str, ...] = common.required(f"Methods, of {', '.join(METHODS)}.")
    sizes: tuple[int, ...] = common.required("Training-set sizes N (>= bo_start).")
    seeds: int = common.required("Seeds (0..seeds-1).", minimum=1)
    test_size: int = common.required("Held-out test architectures per dataset.", minimum=2)
    test_seed: int = common.required("Seed of the test set.", minimum=0)
    bo_start: int = common.required("Random architectures before the first BO batch.",
                                    minimum=1)
    batch_size: int = common.required("Architectures per BO batch.", minimum=1)
    bo_candidates: int = common.required("Unmeasured architectures scored per BO round.",
                                         minimum=1)
    forest_trees: int = common.required("Trees of the random forest.", minimum=1)

    def __post_init__(self) -> None:
        check(self)
        for name, values, known in (("datasets", self.datasets, DATASETS),
                                    ("methods", self.methods, METHODS)):
            if not values or any(value not in known for value in values):
                raise HwnasError(f"{name} must be some of {known}, got {values!r}")
        if min(self.sizes) < self.bo_start:
            raise HwnasError(f"sizes must be >= bo_start ({self.bo_start}), got {self.sizes}")


def load_dataset(name: str) -> tuple[np.ndarray, Any]:
    """(one-hot encodings [rows, D], the latency table) of one dataset."""
    if name == "nb201":
        space = NB201Space()
        return space.decisions.one_hot(space.all_choices()), load_nb201_latency()
    table = load_fbnet_latency()
    return get_space("fbnet-cifar").decisions.one_hot(np.asarray(table.choices)), table


def scores(truth: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """RMSE, MAPE and Kendall tau-b; a constant prediction (tau undefined) scores tau 0."""
    error = prediction - truth
    constant = bool(np.ptp(prediction) <= 1e-9 * max(1.0, float(np.abs(prediction).max())))
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mape": float(100 * np.mean(np.abs(error) / np.abs(truth))),
        "kendall": 0.0 if constant else float(kendalltau(truth, prediction).statistic),
        "constant": constant,
    }


def fit_predict(method: str, X: np.ndarray, y: np.ndarray, X_test: np.ndarray, seed: int,
                own: MetricPredictorConfig) -> np.ndarray:
    if method in ("gp_bo", "gp_random"):
        return GaussianProcessPredictor(seed=seed).fit(X, y).predict(X_test)
    if method == "gp_matern_random":
        return GaussianProcessPredictor(kernel="matern", seed=seed).fit(X, y).predict(X_test)
    if method == "gp_log_random":
        model = GaussianProcessPredictor(target_transform="log", seed=seed)
        return model.fit(X, y).predict(X_test)
    if method == "rf_random":
        forest = RandomForestRegressor(n_estimators=own.forest_trees, random_state=seed,
                                       n_jobs=1)
        return forest.fit(X, y).predict(X_test)
    return RidgeCV(alphas=RIDGE_ALPHAS).fit(X, y).predict(X_test)


def run_one(encodings: np.ndarray, target: np.ndarray, test: np.ndarray, pool: np.ndarray,
            sizes: list[int], seed: int, own: MetricPredictorConfig) -> dict:
    """{method: {N: scores}} for one dataset, device and seed."""
    rng = np.random.default_rng(seed)
    random_order = pool[rng.permutation(len(pool))]
    orders = {}
    if "gp_bo" in own.methods:
        selection = select_by_bayesian_optimisation(
            encodings[pool], lambda rows: target[pool[rows]], budget=max(sizes), rng=rng,
            acquisition="uncertainty", batch_size=own.batch_size,
            start_indices=np.searchsorted(pool, random_order[:own.bo_start]),
            candidates_per_round=own.bo_candidates,
            predictor_factory=lambda gp_seed: GaussianProcessPredictor(restarts=0, seed=gp_seed),
        )
        orders["gp_bo"] = pool[selection.indices]
    results = {}
    for method in own.methods:
        order = orders.get(method, random_order)
        results[method] = {}
        for size in sizes:
            rows = order[:size]
            prediction = fit_predict(method, encodings[rows], target[rows], encodings[test],
                                     seed, own)
            results[method][size] = scores(target[test], prediction)
    return results


def summarise(per_seed: list[dict]) -> dict:
    """Median, quartiles and extremes over seeds of each method/N/metric."""
    summary = {}
    for method in per_seed[0]:
        summary[method] = {}
        for size in per_seed[0][method]:
            entry = {}
            for metric in METRICS:
                values = np.array([run[method][size][metric] for run in per_seed])
                entry[metric] = float(np.median(values))
                entry[f"{metric}_spread"] = {
                    "q25": float(np.quantile(values, 0.25)),
                    "q75": float(np.quantile(values, 0.75)),
                    "min": float(values.min()), "max": float(values.max()),
                }
                entry[f"{metric}_per_seed"] = values.tolist()
            entry["constant_predictions"] = sum(run[method][size]["constant"] for run in per_seed)
            summary[method][str(size)] = entry
    return summary


def plot(results: dict, sizes: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [(dataset, device) for dataset in results for device in results[dataset]]
    figure, axes = plt.subplots(len(cells), 3, figsize=(12, 2.6 * len(cells)), squeeze=False)
    for row, (dataset, device) in enumerate(cells):
        for column, metric in enumerate(METRICS):
            axis = axes[row, column]
            for method, by_size in results[dataset][device].items():
                median = [by_size[str(n)][metric] for n in sizes]
                low = [by_size[str(n)][f"{metric}_spread"]["min"] for n in sizes]
                high = [by_size[str(n)][f"{metric}_spread"]["max"] for n in sizes]
                axis.plot(sizes, median, marker="o", label=method)
                axis.fill_between(sizes, low, high, alpha=0.15)
            axis.set_xscale("log")
            axis.set_title(f"{dataset} {device.removesuffix('_latency_ms')}: {metric}", fontsize=9)
            axis.set_xlabel("measured architectures N")
    axes[0, 0].legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def main(argv: list[str] | None = None) -> None:
    arguments = common.parser(__doc__.split("\n")[0], NAME).parse_args(argv)
    loaded, source = common.load_preset(NAME, {"benchmark": MetricPredictorConfig},
                                        quick=arguments.quick, path=arguments.config)
    own = loaded["benchmark"]
    sizes = sorted(set(own.sizes))
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    results: dict = {}
    target_spread: dict = {}
    # One BLAS thread: the matrices are small (<= 200 x 200), and threads only fight each other.
    with threadpool_limits(1), Progress() as progress:
        task = progress.add_task("runs", total=len(own.datasets) * len(own.devices) * own.seeds)
        for dataset in own.datasets:
            encodings, table = load_dataset(dataset)
            targets = {device: np.asarray(table.column(device)) for device in own.devices}
            order = np.random.default_rng(own.test_seed).permutation(len(encodings))
            test, pool = np.sort(order[: own.test_size]), np.sort(order[own.test_size :])
            target_spread[dataset] = {device: targets[device][test] for device in own.devices}
            results[dataset] = {}
            for device in own.devices:
                per_seed = []
                for seed in range(own.seeds):
                    per_seed.append(run_one(encodings, targets[device], test, pool, sizes, seed,
                                            own))
                    progress.advance(task)
                results[dataset][device] = summarise(per_seed)
    elapsed = time.perf_counter() - started
    document = {
        "metadata": {
            "description": "GP metric predictor vs training-set size on measured HELP latencies",
            "sizes": sizes, "seeds": list(range(own.seeds)), "test_size": own.test_size,
            "test_seed": own.test_seed, "batch_size": own.batch_size,
            "methods": list(own.methods), "bo_acquisition": "uncertainty",
            "gp_kernel": "matern+linear (default) + white noise",
            "bo_start": f"first {own.bo_start} of the seed's random order",
            "encodings": {"nb201": "one-hot 6 edges x 5 ops", "fbnet": "one-hot 22 layers x 9"},
            "units": {"rmse": "ms", "mape": "%", "kendall": "tau-b"},
            "constant_prediction_rule": "a model predicting one value for all test archs "
            "(e.g. a GP that explains everything as noise) scores Kendall tau 0",
            "bo_candidates_per_round": own.bo_candidates, "bo_gp_restarts": 0,
            "test_target_std_ms": {  # = RMSE of predicting the test mean
                dataset: {device: float(np.std(values)) for device, values in stds.items()}
                for dataset, stds in target_spread.items()
            },
            "elapsed_s": round(elapsed, 1), "python": platform.python_version(),
            "command": "python -m benchmarks.experiments.metric_predictor"
            + (" --quick" if arguments.quick else ""),
            "settings": {"preset": source, "benchmark": settings.to_dict(own)},
        },
        **results,
    }
    path = common.output_path(arguments.out, NAME, arguments.quick)
    atomic_write_json(path, document)
    plot(results, sizes, path.with_suffix(".png"))
    print_table(results, sizes)
    print(f"wrote {path} and {path.with_suffix('.png')} in {elapsed:.0f} s")


def print_table(results: dict, sizes: list[int]) -> None:
    for dataset in results:
        for device, by_method in results[dataset].items():
            print(f"\n{dataset} {device}  (median over seeds: RMSE ms / MAPE % / Kendall tau)")
            print("method".ljust(18) + "".join(f"N={n}".rjust(22) for n in sizes))
            for method, by_size in by_method.items():
                cells = [
                    f"{by_size[str(n)]['rmse']:.3g}/{by_size[str(n)]['mape']:.1f}/"
                    f"{by_size[str(n)]['kendall']:.2f}".rjust(22)
                    for n in sizes
                ]
                print(method.ljust(18) + "".join(cells))


if __name__ == "__main__":
    common.run(main)
