"""The default job (``make demo``): a short hardware-aware search for this CPU on CIFAR-10.

Five steps, each written to the run directory and skipped when its output is already there, so
a killed demo continues where it stopped:

1. ``lut.json``: the ONNX Runtime (1 thread) latency table of the fbnet-cifar space, measured
   here (:func:`hwnas.cost.lutbuild.build_lut`, itself resumable key by key);
2. ``search/``: FBNet DNAS on a class-balanced CIFAR-10 subset with that table as LAT;
3. ``latency.json``: the derived networks and a MobileNetV2 baseline measured end to end with
   the same engine, beside the table's prediction;
4. ``train-<name>/``: the most probable network within the latency target and the baseline
   trained with one identical short recipe (:func:`hwnas.train.loop.train`);
5. ``report.md``: what a person reads (:mod:`hwnas.report.demo_report`).

The numbers of a demo come from a few minutes of CPU: they show the pipeline and its evidence,
not converged accuracies (``benchmarks/`` holds the longer comparisons).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from hwnas.arch.spec import ArchSpec
from hwnas.arch.zoo import mobilenet_v2_cifar
from hwnas.cost.engines import TimingSettings, make_engine
from hwnas.cost.lut import LatencyTable
from hwnas.cost.lutbuild import NETWORK_TIMING, build_lut, measure_networks
from hwnas.data.cifar import CifarArrays
from hwnas.dnas.data import search_batches
from hwnas.dnas.result import SearchResult
from hwnas.io import atomic_write_json, read_json
from hwnas.train.loop import TrainResult, train
from hwnas.train.recipe import TrainRecipe

logger = logging.getLogger(__name__)

SPACE = "fbnet-cifar"
QUICK_TIMING = TimingSettings(warmup=2, repeats=5, rounds=1)


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; the defaults took 5.0 minutes on the 2-core development machine."""

    out: Path = Path("runs/demo")
    subset_per_class: int = 200  # 2,000 training images: 1,600 for weights, 400 for theta
    test_per_class: int = 100  # 1,000 test images
    search_epochs: int = 8
    warmup_epochs: int = 2
    train_epochs: int = 6
    baseline_width: float = 0.5
    #: the search's latency target T is the predicted latency of the network with this
    #: candidate at every layer; the loss is CE * 0.2 * max(LAT / T, T / LAT) ** 0.6
    reference_candidate: str = "k3_e3"
    #: the width/stride-changing layers keep this candidate (``hwnas.dnas.search`` docstring)
    transition_candidate: str = "k3_e6"
    compute_threads: int = 2  # training and search; latency is always timed with 1 thread
    quick_timing: bool = False  # smoke runs: few timed calls per key, 4 calibration networks
    seed: int = 0
    data_dir: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: str(value) if isinstance(value, Path) else value
                for key, value in asdict(self).items()}


@dataclass
class DemoHooks:
    """Callbacks the CLI fills with progress bars; the defaults do nothing."""

    lut_progress: Callable[[str, int, int], None] = lambda stage, done, total: None
    search_progress: Callable[[Any], None] | None = None
    train_progress: Callable[[str], Any] = lambda name: None
    step: Callable[[str], None] = field(default=lambda message: logger.info(message))


def build_table(settings: DemoSettings, hooks: DemoHooks) -> LatencyTable:
    hooks.step("1/5 latency table: ONNX Runtime, 1 thread, every layer of the fbnet-cifar space")
    engine = make_engine("ort", threads=1)
    if settings.quick_timing:
        return build_lut(SPACE, engine, settings.out / "lut.json", timing=QUICK_TIMING,
                         calibration_networks=4, network_timing=QUICK_TIMING,
                         on_progress=hooks.lut_progress)
    return build_lut(SPACE, engine, settings.out / "lut.json", on_progress=hooks.lut_progress)


def search(settings: DemoSettings, table: LatencyTable, data: CifarArrays,
           hooks: DemoHooks) -> SearchResult:
    from hwnas.dnas import run_dnas
    from hwnas.spaces import get_space

    run_dir = settings.out / "search"
    if (run_dir / "result.json").exists():
        hooks.step("2/5 search: done before, reading search/result.json")
        return SearchResult.load(run_dir / "result.json")
    space = get_space(SPACE)
    target = table.cost(space.uniform_arch(settings.reference_candidate))
    hooks.step(f"2/5 FBNet search ({settings.search_epochs} epochs) with the table as LAT, "
               f"target {target:.3f} ms (the all-{settings.reference_candidate} network), "
               f"width/stride-changing layers fixed to {settings.transition_candidate}")
    weights, theta = search_batches(data, per_class=settings.subset_per_class, batch_size=64,
                                    seed=settings.seed)
    torch.set_num_threads(settings.compute_threads)
    return run_dnas(
        space, table, weights, theta, epochs=settings.search_epochs, target_latency=target,
        target_form="absolute",
        fixed_layers={layer: settings.transition_candidate for layer in space.transition_layers},
        warmup_epochs=settings.warmup_epochs, weight_lr=0.025, seed=settings.seed,
        run_dir=run_dir, resume=run_dir.exists(), num_samples=8,
        checkpoint_every=max(1, len(weights) // 2), progress=hooks.search_progress,
    )


SEARCHED = "searched (within target)"


def candidates(result: SearchResult, settings: DemoSettings) -> dict[str, ArchSpec]:
    """The networks the demo measures: the most probable network within the target (the one it
    trains; the argmax if nothing fits), the argmax, the cheapest and most likely samples, and
    the baseline."""
    chosen = {SEARCHED: ArchSpec.from_string((result.within_target or result.argmax).arch),
              "searched (argmax)": ArchSpec.from_string(result.argmax.arch)}
    if result.samples:
        chosen["searched (cheapest sample)"] = ArchSpec.from_string(result.samples[0].arch)
        likely = max(result.samples, key=lambda sample: sample.log_probability)
        chosen["searched (most likely sample)"] = ArchSpec.from_string(likely.arch)
    chosen[f"mobilenet_v2_cifar x{settings.baseline_width}"] = mobilenet_v2_cifar(
        width_multiplier=settings.baseline_width)
    return chosen


def measure(settings: DemoSettings, table: LatencyTable, networks: dict[str, ArchSpec],
            hooks: DemoHooks) -> dict[str, Any]:
    path = settings.out / "latency.json"
    if path.exists():
        hooks.step("3/5 end-to-end latency: done before, reading latency.json")
        return read_json(path, "latency measurements")
    hooks.step("3/5 end-to-end latency of the derived networks and the baseline (ORT, 1 thread)")
    torch.set_num_threads(1)
    engine = make_engine("ort", threads=1)
    archs = list(networks.values())
    timing = QUICK_TIMING if settings.quick_timing else NETWORK_TIMING
    stats = measure_networks(archs, engine, timing, on_progress=hooks.lut_progress)
    rows = []
    for (name, arch), timing in zip(networks.items(), stats):
        in_space = _in_table_space(table, arch)
        rows.append({
            "name": name, "arch": arch.to_string(), "measured_ms": timing.median_ms,
            "p10_ms": timing.p10_ms, "p90_ms": timing.p90_ms,
            "predicted_ms": table.cost(arch) if in_space else None,
        })
    data = {"engine": engine.metadata(), "timing": timing.to_dict(), "networks": rows}
    atomic_write_json(path, data)
    return data


def _in_table_space(table: LatencyTable, arch: ArchSpec) -> bool:
    from hwnas.spaces import get_space

    return get_space(table.space_name).contains(arch)


def train_networks(settings: DemoSettings, data: CifarArrays, networks: dict[str, ArchSpec],
                   hooks: DemoHooks) -> dict[str, TrainResult | dict]:
    """Train the searched network and the baseline with one identical recipe."""
    hooks.step(f"4/5 training the searched network and the baseline ({settings.train_epochs} "
               "epochs each, same recipe)")
    torch.set_num_threads(settings.compute_threads)
    recipe = TrainRecipe(epochs=settings.train_epochs, batch_size=64, seed=settings.seed)
    subset = data.subset(train_per_class=settings.subset_per_class,
                         test_per_class=settings.test_per_class,
                         rng=np.random.default_rng(settings.seed))
    results: dict[str, TrainResult | dict] = {}
    for name in (SEARCHED, f"mobilenet_v2_cifar x{settings.baseline_width}"):
        run_dir = settings.out / f"train-{_slug(name)}"
        if (run_dir / "result.json").exists():
            results[name] = read_json(run_dir / "result.json", "training result")
            continue
        resume = (run_dir / "checkpoint.pt").exists()
        results[name] = train(networks[name], subset, recipe, run_dir, resume=resume,
                              threads=settings.compute_threads,
                              progress=hooks.train_progress(name))
    return results


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-").replace("--", "-")


def run_demo(settings: DemoSettings, load_data: Callable[[], CifarArrays],
             hooks: DemoHooks | None = None) -> Path:
    """Run (or continue) the demo in ``settings.out`` and return the report's path."""
    from hwnas.report.demo_report import write_report

    hooks = hooks or DemoHooks()
    settings.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(settings.out / "settings.json", settings.to_dict())
    table = build_table(settings, hooks)
    data = load_data()
    result = search(settings, table, data, hooks)
    networks = candidates(result, settings)
    measure(settings, table, networks, hooks)
    train_networks(settings, data, networks, hooks)
    hooks.step("5/5 writing the report")
    return write_report(settings.out)
