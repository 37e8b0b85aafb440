"""Shared, resumable steps of the DNAS benchmarks (``dnas_devices``, ``dnas_quality``).

Every step caches its output in a work folder and is skipped when the output exists, so a killed
benchmark continues, and two benchmarks can share a search. Compute (search, training) and
latency timing are separate steps: ``--skip-latency`` runs only the compute, so latency can be
timed later on a quiet machine (timings are wrecked by any other process).
"""

from __future__ import annotations

import argparse
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.arch.spec import ArchSpec
from hwnas.cost.base import CostModel
from hwnas.cost.engines import make_engine
from hwnas.cost.lut import LatencyTable
from hwnas.cost.lutbuild import NETWORK_TIMING, build_lut, measure_networks
from hwnas.data.cifar import CifarArrays, load_cifar10
from hwnas.dnas import run_dnas
from hwnas.dnas.data import search_batches
from hwnas.dnas.masking import cifar_at_resolution
from hwnas.dnas.result import SearchResult
from hwnas.io import atomic_write_json, read_json
from hwnas.spaces import get_space
from hwnas.train.loop import train
from hwnas.train.recipe import TrainRecipe

SPACE = "fbnet-cifar"
WORK = Path("benchmarks/results/dnas_work")


@dataclass(frozen=True)
class Budget:
    """One identical budget for every search and every training of a benchmark."""

    search_per_class: int = 200  # 2,000 images: 1,600 weights / 400 theta
    search_epochs: int = 10
    warmup_epochs: int = 4  # weights only: the random-path supernet learns slowly on a CPU
    train_per_class: int = 200
    test_per_class: int = 100
    train_epochs: int = 8
    batch_size: int = 64
    threads: int = 1
    seed: int = 0
    #: every search uses FBNet's hard-budget loss with T = the cost, on the searched-for device,
    #: of the network with this candidate at every layer (a mid-size network): one budget
    #: rule for every device, so the searches differ only by the device's cost structure.
    reference_candidate: str = "k3_e3"

    @classmethod
    def quick(cls) -> Budget:
        return cls(search_per_class=40, search_epochs=2, warmup_epochs=1, train_per_class=40,
                   test_per_class=10, train_epochs=1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_arguments(description: str, argv: list[str] | None) -> tuple[Any, Budget, Path]:
    """The options every DNAS benchmark takes; returns (arguments, budget, work folder)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny budget: a smoke run")
    parser.add_argument("--skip-latency", action="store_true",
                        help="compute only; rerun without it on a quiet machine to time latency")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    arguments = parser.parse_args(argv)
    budget = Budget.quick() if arguments.quick else Budget()
    work = WORK.with_name(WORK.name + ("_quick" if arguments.quick else ""))
    return arguments, budget, work


def machine() -> dict[str, Any]:
    from hwnas.cost.engines import cpu_model

    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__}


def local_lut(work: Path) -> LatencyTable:
    """The ONNX Runtime 1-thread LUT of the space on this machine (built once, resumable)."""
    return build_lut(SPACE, make_engine("ort", threads=1), work / "lut-fbnet-cifar-ort-1t.json")


def load_data() -> CifarArrays:
    return load_cifar10()


def reference_target(cost_model: CostModel, budget: Budget) -> float:
    """The latency budget T of a search: ``cost_model``'s cost of the reference network."""
    return cost_model.cost(get_space(SPACE).uniform_arch(budget.reference_candidate))


def search(name: str, cost_model: CostModel, data: CifarArrays, budget: Budget,
           work: Path) -> SearchResult:
    """FBNet DNAS for ``cost_model``, cached by ``name``: alpha 0.2, beta 0.6, the hard-budget
    form ``CE * alpha * max(1, LAT / T) ** beta`` with T from :func:`reference_target`."""
    run_dir = work / f"search-{name}"
    if (run_dir / "result.json").exists():
        return SearchResult.load(run_dir / "result.json")
    torch.set_num_threads(budget.threads)
    weights, theta = search_batches(data, per_class=budget.search_per_class,
                                    batch_size=budget.batch_size, seed=budget.seed)
    print(f"search {name}: {weights.num_images} weight / {theta.num_images} theta images",
          flush=True)
    return run_dnas(get_space(SPACE), cost_model, weights, theta, epochs=budget.search_epochs,
                    warmup_epochs=budget.warmup_epochs, weight_lr=0.025, seed=budget.seed,
                    target_latency=reference_target(cost_model, budget),
                    run_dir=run_dir, resume=run_dir.exists(), num_samples=8,
                    checkpoint_every=max(1, len(weights) // 2))


def train_network(name: str, arch: ArchSpec, data: CifarArrays, budget: Budget,
                  work: Path) -> dict[str, Any]:
    """Top-1 of ``arch`` after the benchmark's identical recipe, cached by ``name``; a network
    that chose another input resolution (DMasking) trains on images resized to it."""
    run_dir = work / f"train-{name}"
    if (run_dir / "result.json").exists():
        return read_json(run_dir / "result.json", "training result")
    torch.set_num_threads(budget.threads)
    subset = data.subset(train_per_class=budget.train_per_class,
                         test_per_class=budget.test_per_class,
                         rng=np.random.default_rng(budget.seed))
    subset = cifar_at_resolution(subset, arch.resolution)
    recipe = TrainRecipe(epochs=budget.train_epochs, batch_size=budget.batch_size,
                         seed=budget.seed)
    print(f"train {name}: {arch.to_string()}", flush=True)
    result = train(arch, subset, recipe, run_dir, resume=(run_dir / "checkpoint.pt").exists(),
                   threads=budget.threads)
    return result.to_dict()


def measured_latency(archs: dict[str, ArchSpec], work: Path, cache_name: str) -> dict[str, Any]:
    """Median end-to-end ORT (1 thread, batch 1) latency of each network, interleaved rounds."""
    path = work / cache_name
    if path.exists():
        cached = read_json(path, "latency cache")
        if set(cached["ms"]) >= set(archs):
            return cached
    torch.set_num_threads(1)
    engine = make_engine("ort", threads=1)
    stats = measure_networks(list(archs.values()), engine, NETWORK_TIMING)
    data = {"engine": engine.metadata(), "timing": NETWORK_TIMING.to_dict(),
            "ms": {name: timing.median_ms for name, timing in zip(archs, stats)},
            "p10_ms": {name: timing.p10_ms for name, timing in zip(archs, stats)},
            "p90_ms": {name: timing.p90_ms for name, timing in zip(archs, stats)}}
    atomic_write_json(path, data)
    return data
