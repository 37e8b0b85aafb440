"""How well does a GP predict a measured whole-network metric from few measured architectures?

ChamNet's energy predictor is a Gaussian process trained on measured architectures chosen by
Bayesian optimisation. No energy counter exists on the development machines (see
``hwnas.cost.energy.energy_reader``), so this benchmark evaluates the same predictor on real
measured whole-network metrics of the same kind: HELP's latencies on a Pixel 2 phone, a GTX 1080 Ti
and a Xeon Gold 6226, for NAS-Bench-201 cells (one-hot 6 x 5) and for 5,000 FBNet-space
architectures (one-hot 22 x 9).

For each dataset a fixed test set (``--test-size`` rows, seed 2021) is held out; the rest is the
pool. For each seed, each device and each training size N:

* ``gp_bo``: GP trained on the first N architectures chosen by BO with the uncertainty acquisition
  (10 random, then batches of ``--batch-size``), see :mod:`hwnas.predictors.active`;
* ``gp_random``: GP trained on the first N of a random permutation of the pool;
* ``gp_log_random``: the same with a log-transformed target;
* ``gp_matern_random``: the same with a Matern-only kernel (no linear term);
* ``rf_random`` / ``ridge_random``: random forest (200 trees) and ridge (alpha by LOO-CV) on the
  same encoding and the same random samples.

Reported on the test set: RMSE (ms), MAPE (%) and Kendall tau-b, median and spread over seeds.
Run ``python -m benchmarks.metric_predictor`` (a few minutes on 2 cores; ``--quick`` for a smoke
run). Writes ``benchmarks/results/metric_predictor.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import io
import logging
import platform
import time
from pathlib import Path

import numpy as np
from rich.progress import Progress
from scipy.stats import kendalltau
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import RidgeCV
from threadpoolctl import threadpool_limits

from hwnas.data.tables import load_fbnet_latency, load_nb201_latency
from hwnas.io import atomic_write_bytes, atomic_write_json
from hwnas.predictors.active import select_by_bayesian_optimisation
from hwnas.predictors.gp import GaussianProcessPredictor, one_hot_choices
from hwnas.spaces.nb201 import NB201Space

DEVICES = ("help_pixel2_latency_ms", "help_1080ti_1_latency_ms", "help_gold_6226_latency_ms")
METHODS = ("gp_bo", "gp_random", "gp_log_random", "gp_matern_random", "rf_random", "ridge_random")
METRICS = ("rmse", "mape", "kendall")
TEST_SEED = 2021
BO_CANDIDATES = 2000  # unmeasured archs scored per BO round (random subset of the pool)
RESULTS = Path(__file__).resolve().parent / "results"


def load_dataset(name: str, data_dir: str | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(one-hot encodings [rows, D], {device column: latency [rows]}) of one dataset."""
    if name == "nb201":
        space = NB201Space()
        table = load_nb201_latency(data_dir)
        encodings = space.encode_many(space.all_choices(data_dir))
    else:
        table = load_fbnet_latency(data_dir)
        encodings = one_hot_choices(np.asarray(table.choices), 9)
    return encodings, {device: np.asarray(table.column(device)) for device in DEVICES}


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


def fit_predict(method: str, X: np.ndarray, y: np.ndarray, X_test: np.ndarray, seed: int):
    if method in ("gp_bo", "gp_random"):
        return GaussianProcessPredictor(seed=seed).fit(X, y).predict(X_test)
    if method == "gp_matern_random":
        return GaussianProcessPredictor(kernel="matern", seed=seed).fit(X, y).predict(X_test)
    if method == "gp_log_random":
        model = GaussianProcessPredictor(target_transform="log", seed=seed)
        return model.fit(X, y).predict(X_test)
    if method == "rf_random":
        forest = RandomForestRegressor(n_estimators=200, random_state=seed, n_jobs=1)
        return forest.fit(X, y).predict(X_test)
    return RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(X, y).predict(X_test)


def run_one(encodings, target, test, pool, sizes, seed, batch_size, methods):
    """{method: {N: scores}} for one dataset, device and seed."""
    rng = np.random.default_rng(seed)
    random_order = pool[rng.permutation(len(pool))]
    orders = {}
    if "gp_bo" in methods:
        selection = select_by_bayesian_optimisation(
            encodings[pool], lambda rows: target[pool[rows]], budget=max(sizes), rng=rng,
            acquisition="uncertainty", batch_size=batch_size,
            start_indices=np.searchsorted(pool, random_order[:10]),
            candidates_per_round=BO_CANDIDATES,
            predictor_factory=lambda gp_seed: GaussianProcessPredictor(restarts=0, seed=gp_seed),
        )
        orders["gp_bo"] = pool[selection.indices]
    results = {}
    for method in methods:
        order = orders.get(method, random_order)
        results[method] = {}
        for size in sizes:
            rows = order[:size]
            prediction = fit_predict(method, encodings[rows], target[rows], encodings[test], seed)
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--datasets", nargs="+", default=["nb201", "fbnet"],
                        choices=["nb201", "fbnet"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10, 25, 50, 100, 200])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--output", type=Path, default=RESULTS / "metric_predictor.json")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 seed, sizes 10 25, nb201 only, one device")
    args = parser.parse_args(argv)
    devices = DEVICES
    if args.quick:
        args.seeds, args.sizes, args.datasets, devices = 1, [10, 25], ["nb201"], DEVICES[:1]
    if min(args.sizes) < 10 or args.seeds < 1:
        parser.error("sizes must be >= 10 (the BO start is 10 random archs) and seeds >= 1")
    sizes = sorted(set(args.sizes))
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    results: dict = {}
    target_spread: dict = {}
    # One BLAS thread: the matrices are small (<= 200 x 200), and threads only fight each other.
    with threadpool_limits(1), Progress() as progress:
        task = progress.add_task("runs", total=len(args.datasets) * len(devices) * args.seeds)
        for dataset in args.datasets:
            encodings, targets = load_dataset(dataset, args.data_dir)
            order = np.random.default_rng(TEST_SEED).permutation(len(encodings))
            test, pool = np.sort(order[: args.test_size]), np.sort(order[args.test_size :])
            target_spread[dataset] = {device: targets[device][test] for device in devices}
            results[dataset] = {}
            for device in devices:
                per_seed = []
                for seed in range(args.seeds):
                    per_seed.append(run_one(encodings, targets[device], test, pool, sizes, seed,
                                            args.batch_size, args.methods))
                    progress.advance(task)
                results[dataset][device] = summarise(per_seed)
    elapsed = time.perf_counter() - started
    document = {
        "metadata": {
            "description": "GP metric predictor vs training-set size on measured HELP latencies",
            "sizes": sizes, "seeds": list(range(args.seeds)), "test_size": args.test_size,
            "test_seed": TEST_SEED, "batch_size": args.batch_size, "methods": args.methods,
            "bo_acquisition": "uncertainty",
            "gp_kernel": "matern+linear (default) + white noise",
            "bo_start": "first 10 of the seed's random order",
            "encodings": {"nb201": "one-hot 6 edges x 5 ops", "fbnet": "one-hot 22 layers x 9"},
            "units": {"rmse": "ms", "mape": "%", "kendall": "tau-b"},
            "constant_prediction_rule": "a model predicting one value for all test archs "
            "(e.g. a GP that explains everything as noise) scores Kendall tau 0",
            "bo_candidates_per_round": BO_CANDIDATES, "bo_gp_restarts": 0,
            "test_target_std_ms": {  # = RMSE of predicting the test mean
                dataset: {device: float(np.std(values)) for device, values in stds.items()}
                for dataset, stds in target_spread.items()
            },
            "elapsed_s": round(elapsed, 1), "python": platform.python_version(),
            "command": "python -m benchmarks.metric_predictor",
        },
        **results,
    }
    atomic_write_json(args.output, document)
    plot(results, sizes, args.output.with_suffix(".png"))
    print_table(results, sizes)
    print(f"wrote {args.output} and {args.output.with_suffix('.png')} in {elapsed:.0f} s")


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
    main()
