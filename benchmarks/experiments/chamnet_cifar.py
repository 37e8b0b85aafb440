"""ChamNet on this CPU: ORT latency LUT + GP predictor from short CIFAR-10 trainings, 3 budgets.

Method (settings: ``configs/benchmarks/chamnet_cifar.yaml``):

1. build (or resume) the ``chamnet-cifar`` latency table of the ``lut_build`` section (ONNX
   Runtime, 1 thread, calibrated on whole networks: :func:`hwnas.cost.lutbuild.build_lut`);
2. budgets = the ``percentiles`` of the LUT-predicted latency of ``random_networks`` uniformly
   random architectures (drawn from the ``chamnet`` section's seed);
3. ChamNet (:func:`hwnas.evolution.chamnet.run_chamnet`, the ``chamnet`` section) with the GA
   proposing candidates under each budget and a GP accuracy predictor fitted on short CIFAR-10
   trainings (:class:`hwnas.evolution.evaluators.CifarTrainingEvaluator`: ``evaluator_epochs``
   epochs of the ``train`` section's recipe on ``train_per_class`` images per class, top-1 on
   ``valid_per_class`` validation images per class held out of the training split). The search
   uses ``(1 - margin) x budget``: an answer is usually close to its limit, and end-to-end
   timings move by a few percent between runs;
4. the returned network of each budget is measured end to end with the same engine and the
   table's network timing (:func:`hwnas.cost.lutbuild.measure_networks`): within budget? within
   10 % of predicted?

Writes ``benchmarks/results/chamnet_cifar.json``; the LUT, the search's run folder and the
trainings are cached in ``benchmarks/work/chamnet_cifar/``. Run::

    python -m benchmarks.experiments.chamnet_cifar                 # about 7 minutes
    python -m benchmarks.experiments.chamnet_cifar --skip-latency  # compute only
    python -m benchmarks.experiments.chamnet_cifar --quick         # smoke run
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from benchmarks.experiments import common
from hwnas import settings
from hwnas.arch.spec import ArchSpec
from hwnas.cost.budget import make_budgets
from hwnas.cost.lut_config import LutBuildConfig
from hwnas.cost.health import Monitor
from hwnas.cost.lutbuild import engine_of, measure_networks
from hwnas.data.cifar import load_cifar10
from hwnas.errors import HwnasError
from hwnas.evolution.chamnet import run_chamnet, run_config
from hwnas.evolution.config import ChamNetConfig
from hwnas.evolution.evaluators import CifarTrainingEvaluator
from hwnas.io import read_json
from hwnas.runs import first_difference
from hwnas.settings import check
from hwnas.spaces import get_space
from hwnas.train.recipe import TrainRecipe

NAME = "chamnet_cifar"
#: the networks' latency is "close to predicted" within this fraction
WITHIN = 0.1


@dataclass(frozen=True, kw_only=True)
class ChamNetCifarConfig:
    """The ``benchmark`` section of ``configs/benchmarks/chamnet_cifar.yaml``."""

    percentiles: tuple[float, ...] = common.required(
        "Budgets at these percentiles of the random networks' predicted latency.")
    random_networks: int = common.required("Random networks the percentiles are taken over.",
                                           minimum=1)
    margin: float = common.required("Search under (1 - margin) x budget: room for timing noise.",
                                    minimum=0, below=1)
    data_limit: int | None = common.required(
        "Keep only the first N images of each CIFAR-10 split (none: all; smoke runs).",
        minimum=1)

    def __post_init__(self) -> None:
        check(self)


def best_per_budget(search_dir: Any, current: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The cached search's best architecture per budget (its ``result.json``), None when it has
    not finished; refuses one whose stored settings differ from ``current`` (compared on the
    keys it stored: older runs did not store every setting)."""
    if not (search_dir / "result.json").exists():
        return None
    saved = read_json(search_dir / "config.json", "ChamNet config")
    saved.pop("command", None)
    difference = first_difference(saved, {key: current.get(key) for key in saved})
    if difference is not None:
        raise HwnasError(f"the cached search {search_dir} used other settings "
                                f"('{difference}' differs): move it away")
    return read_json(search_dir / "result.json", "ChamNet result")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser(__doc__.split("\n")[0], NAME)
    parser.add_argument("--skip-latency", action="store_true",
                        help="compute only: no end-to-end timing of the answers")
    arguments = parser.parse_args(argv)
    loaded, source = common.load_preset(
        NAME, {"lut_build": LutBuildConfig, "chamnet": ChamNetConfig, "train": TrainRecipe,
               "benchmark": ChamNetCifarConfig}, quick=arguments.quick, path=arguments.config)
    lut_config, config, own = loaded["lut_build"], loaded["chamnet"], loaded["benchmark"]
    recipe = settings.replace(loaded["train"], epochs=config.evaluator_epochs, seed=config.seed)
    logging.basicConfig(level=logging.INFO)
    started = time.perf_counter()
    folder = common.WORK / (NAME + ("-quick" if arguments.quick else ""))
    lut_path = folder / f"lut-{lut_config.space}-{lut_config.engine}-{lut_config.threads}t.json"
    table = common.measured_table(lut_config, lut_path)
    lut_seconds = time.perf_counter() - started
    space = get_space(lut_config.space, "chamnet")
    rng = np.random.default_rng(config.seed)
    random_latency = [table.cost(space.to_arch(row))
                      for row in space.decisions.sample(own.random_networks, rng)]
    limits = [float(np.percentile(random_latency, p)) for p in own.percentiles]
    data = load_cifar10(limit=own.data_limit)
    evaluator = CifarTrainingEvaluator(space, data, recipe, folder / "trainings",
                                        train_per_class=config.train_per_class,
                                  valid_per_class=config.valid_per_class, seed=config.seed)
    budgets = [(table, value * (1.0 - own.margin)) for value in limits]
    search_dir = folder / "search"
    best = best_per_budget(search_dir, run_config(space, evaluator,
                                                  make_budgets(budgets, space), config))
    if best is None:
        best = run_chamnet(space, evaluator, budgets, config, run_dir=search_dir,
                           resume=common.resumable(search_dir)).to_dict()
    archs = [space.to_arch(entry["choices"]) for entry in best["best"]]
    rows = []
    measured: list[float | None] = [None] * len(archs)
    if not arguments.skip_latency:
        common.check_same_machine(table, "ChamNet's answers")
        monitor = Monitor("the answers' timing", lambda message: print(message, flush=True))
        times = measure_networks(archs, engine_of(lut_config), lut_config.network_timing,
                                 lut_config.plan, monitor=monitor, references=[
                                     ArchSpec.from_string(arch)
                                     for arch in table.build.references])
        measured = [times.latency_ms(arch) for arch in archs]
    for limit_ms, arch, entry, measured_ms in zip(limits, archs, best["best"], measured):
        predicted = table.cost(arch)
        row = {"budget_ms": limit_ms, "arch": arch.to_string(),
               "validation_top1": entry["accuracy"], "predicted_ms": predicted}
        if measured_ms is not None:
            row.update(measured_ms=measured_ms, within_budget=measured_ms <= limit_ms,
                       error_pct=100.0 * (predicted - measured_ms) / measured_ms,
                       within_10pct=abs(predicted - measured_ms) <= WITHIN * measured_ms)
        rows.append(row)
        print(f"budget {limit_ms:.3f} ms: predicted {predicted:.3f}, measured "
              f"{measured_ms if measured_ms is None else round(measured_ms, 3)}, val top-1 "
              f"{entry['accuracy']:.2f} %")
    output = {
        "quick": arguments.quick, "budgets": rows, "margin": own.margin, "lut": lut_path.name,
        "lut_keys": len(table.entries), "lut_seconds": lut_seconds, "engine": table.engine,
        "evaluations": config.evaluations, "epochs": config.evaluator_epochs,
        "train_per_class": config.train_per_class, "valid_per_class": config.valid_per_class,
        "predictor": best["predictor"], "wall_seconds": time.perf_counter() - started,
        "settings": {"preset": source, **{name: settings.to_dict(value)
                                          for name, value in loaded.items()}}}
    return common.write_output(arguments.out, NAME, arguments.quick, output)


if __name__ == "__main__":
    common.run(main)
