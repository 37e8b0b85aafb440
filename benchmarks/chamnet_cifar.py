"""ChamNet on this CPU: ORT latency LUT + GP predictor from short CIFAR-10 trainings, 3 budgets.

1. Build (or resume) the ``chamnet-cifar`` latency table on ONNX Runtime, 1 thread
   (:func:`hwnas.cost.lutbuild.build_lut`, calibrated on whole networks);
2. budgets = 25th/50th/75th percentile of the LUT-predicted latency of random architectures;
3. ChamNet (:func:`hwnas.evolution.chamnet.run_chamnet`) with the GA proposing candidates under
   each budget and a GP accuracy predictor fitted on K short CIFAR-10 trainings
   (:class:`hwnas.evolution.evaluators.CifarTrainingEvaluator`: train subset, validation split of
   the training images);
   The search uses ``(1 - margin) x budget`` (default margin 5 %): an answer is usually close
   to its limit, and end-to-end timings move by a few percent between runs;
4. the returned network of each budget is measured end to end with the same engine
   (:func:`hwnas.cost.lutbuild.measure_networks`): within budget? within 10 % of predicted?

    python -m benchmarks.chamnet_cifar [--evaluations 16] [--epochs 2] [--margin 0.05] [--quick]
    -> benchmarks/results/chamnet_cifar.json (run folder benchmarks/results/chamnet_cifar/)

``--quick`` is a smoke test only (tiny timing, 4 trainings of 1 epoch on 10 images per class).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from hwnas.cost.engines import TimingSettings, make_engine
from hwnas.cost.lutbuild import LAYER_TIMING, NETWORK_TIMING, build_lut, measure_networks
from hwnas.data.cifar import load_cifar10
from hwnas.evolution.chamnet import run_chamnet
from hwnas.evolution.evaluators import CifarTrainingEvaluator
from hwnas.evolution.ga import GAConfig
from hwnas.io import atomic_write_json
from hwnas.spaces import get_space
from hwnas.train.recipe import TrainRecipe

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--evaluations", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--margin", type=float, default=0.05,
                        help="search under (1 - margin) x budget: room for timing noise")
    parser.add_argument("--train-per-class", type=int, default=200)
    parser.add_argument("--valid-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "chamnet_cifar.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    started = time.perf_counter()
    folder = args.out.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    engine = make_engine("ort", threads=1)
    layer_timing, network_timing, calibration = LAYER_TIMING, NETWORK_TIMING, 12
    evaluations, epochs, train_pc, valid_pc, limit = (args.evaluations, args.epochs,
                                                      args.train_per_class,
                                                      args.valid_per_class, None)
    if args.quick:
        layer_timing = network_timing = TimingSettings(warmup=1, repeats=3, rounds=1)
        calibration, evaluations, epochs, train_pc, valid_pc, limit = 3, 4, 1, 10, 5, 200
    lut_path = folder / ("lut-quick.json" if args.quick else "lut-chamnet-cifar-ort-1t.json")
    table = build_lut("chamnet-cifar", engine, lut_path, timing=layer_timing,
                      calibration_networks=calibration, network_timing=network_timing)
    lut_seconds = time.perf_counter() - started
    space = get_space("chamnet-cifar")
    rng = np.random.default_rng(args.seed)
    random_latency = [table.cost(space.sample(rng)) for _ in range(300)]
    limits = [float(np.percentile(random_latency, p)) for p in (25, 50, 75)]
    data = load_cifar10(data_dir=args.data_dir, limit=limit)
    evaluator = CifarTrainingEvaluator(
        space, data, TrainRecipe(epochs=epochs, batch_size=64, seed=args.seed),
        folder / "trainings", train_per_class=train_pc, valid_per_class=valid_pc,
        seed=args.seed, threads=1)
    search = run_chamnet(space, evaluator,
                         [(table, value * (1.0 - args.margin)) for value in limits],
                         evaluations=evaluations, initial_samples=max(2, evaluations // 2),
                         batch_size=max(1, evaluations // 6), seed=args.seed,
                         run_dir=folder / "search", ga_config=GAConfig(population=64,
                                                                        generations=30))
    archs = [space.to_arch(best["choices"]) for best in search.best]
    measured = [stats.median_ms for stats in measure_networks(archs, engine, network_timing)]
    rows = []
    for limit_ms, arch, best, measured_ms in zip(limits, archs, search.best, measured):
        predicted = table.cost(arch)
        rows.append({"budget_ms": limit_ms, "arch": arch.to_string(),
                     "validation_top1": best["accuracy"], "predicted_ms": predicted,
                     "measured_ms": measured_ms, "within_budget": measured_ms <= limit_ms,
                     "error_pct": 100.0 * (predicted - measured_ms) / measured_ms,
                     "within_10pct": abs(predicted - measured_ms) <= 0.1 * measured_ms})
        print(f"budget {limit_ms:.3f} ms: predicted {predicted:.3f}, measured "
              f"{measured_ms:.3f}, val top-1 {best['accuracy']:.2f} %")
    atomic_write_json(args.out, {
        "quick": args.quick, "budgets": rows, "margin": args.margin, "lut": lut_path.name,
        "lut_keys": len(table.entries),
        "lut_seconds": lut_seconds, "engine": table.engine,
        "evaluations": evaluations, "epochs": epochs, "train_per_class": train_pc,
        "valid_per_class": valid_pc, "predictor": search.predictor,
        "wall_seconds": time.perf_counter() - started})


if __name__ == "__main__":
    main()
