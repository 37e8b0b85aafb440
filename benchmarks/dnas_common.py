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
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from hwnas.arch.spec import ArchSpec
from hwnas.cost.base import CostModel
from hwnas.cost.engines import TimingSettings, make_engine
from hwnas.cost.flops import FlopsCost
from hwnas.cost.lut import LatencyTable
from hwnas.cost.lutbuild import build_lut, measure_networks
from hwnas.data.cifar import CifarArrays, load_cifar10
from hwnas.dnas import run_dnas
from hwnas.dnas.data import search_batches
from hwnas.dnas.masking import cifar_at_resolution
from hwnas.dnas.result import (SearchResult, derive_within_target, lower_bound,
                               most_probable_within)
from hwnas.io import atomic_write_json, read_json
from hwnas.spaces import get_space
from hwnas.train.loop import train
from hwnas.train.recipe import TrainRecipe

SPACE = "fbnet-cifar"
WARMUP_PASS = TimingSettings(warmup=5, repeats=40, rounds=2)
#: 15 interleaved rounds (the library's default for networks is 3): slow episodes of the host
#: lasting seconds moved a 3-round median by 15-20 % between sessions here, 15 rounds spread
#: the measurement over ~10 s so that such an episode hits a minority of rounds.
BENCHMARK_TIMING = TimingSettings(warmup=5, repeats=40, rounds=15)
#: the training recipe's learning rate (``hwnas.train.recipe``), for the supernet weights too
WEIGHT_LR = 0.025
WORK = Path("benchmarks/results/dnas_work")


@dataclass(frozen=True)
class Budget:
    """One identical budget for every search and every training of a benchmark."""

    search_per_class: int = 1000  # 10,000 images: 8,000 weights / 2,000 theta
    #: weights-only epochs of the one supernet warm-up that every search starts from (the
    #: random-path supernet learns slowly: 250 steps left it at 12-14 % in the first run)
    warmup_epochs: int = 6
    #: epochs of each device's search after the shared warm-up (weights and theta alternate)
    search_epochs: int = 5
    train_per_class: int = 500
    test_per_class: int = 500
    train_epochs: int = 10
    batch_size: int = 64
    #: torch threads of searches and trainings (timing always uses 1): both cores, so that a
    #: search from scratch fits 20 minutes (``benchmarks/dnas_search_time.py``). Not part of the
    #: budget's identity (:data:`EXECUTION_FIELDS`): the cached searches and trainings of the
    #: committed results ran with 1 thread, several processes side by side.
    threads: int = 2
    seed: int = 0
    #: every search targets T = the cost, on the searched-for device, of the network with this
    #: candidate at every layer (a mid-size network): one rule for every device, so the
    #: searches differ only by the device's cost structure.
    reference_candidate: str = "k3_e3"
    #: "absolute": the two-sided TuNAS-style target (``hwnas.dnas.loss``); the one-sided
    #: budget let every search of the first run collapse to 18-21 skips out of 22.
    target_form: str = "absolute"
    #: the candidate of the six width/stride-changing layers, which are not searched: sampling
    #: them kept the supernet at chance in CPU minutes (``hwnas.dnas.search`` docstring);
    #: k3_e6 is MobileNetV2's block and what FBNet-B chose at most of them.
    transition_candidate: str = "k3_e6"
    #: "reinforce": theta's gradient compares whole paths on one batch (TuNAS); the Gumbel
    #: straight-through gradient of one sampled residual block is dominated by its identity
    #: term (``hwnas.dnas.steps.reinforce_theta_step``)
    theta_estimator: str = "reinforce"
    paths_per_batch: int = 4
    #: Adam's rate for theta: 155 theta steps instead of the paper's thousands
    theta_lr: float = 0.05

    @classmethod
    def quick(cls) -> Budget:
        return cls(search_per_class=40, search_epochs=2, warmup_epochs=1, train_per_class=40,
                   test_per_class=10, train_epochs=1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_arguments(description: str, argv: list[str] | None,
                    options: Callable[[argparse.ArgumentParser], None] | None = None
                    ) -> tuple[Any, Budget, Path]:
    """The options every DNAS benchmark takes (and those ``options`` adds to the parser);
    returns (arguments, budget, work folder)."""
    parser = argparse.ArgumentParser(description=description)
    if options is not None:
        options(parser)
    parser.add_argument("--quick", action="store_true", help="tiny budget: a smoke run")
    parser.add_argument("--skip-latency", action="store_true",
                        help="compute only; rerun without it on a quiet machine to time latency")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    arguments = parser.parse_args(argv)
    budget = Budget.quick() if arguments.quick else Budget()
    work = WORK.with_name(WORK.name + ("_quick" if arguments.quick else ""))
    check_work_budget(work, budget)
    return arguments, budget, work


#: Budget fields that change how fast a benchmark runs, not what it computes (up to the order of
#: floating-point sums): a work folder's cached steps are reused across them.
EXECUTION_FIELDS = ("threads",)


def check_work_budget(work: Path, budget: Budget) -> None:
    """Record the budget in the work folder; refuse a folder whose cached steps used another."""
    path = work / "budget.json"
    if path.exists() and _identity(read_json(path, "benchmark budget")) != _identity(
            budget.to_dict()):
        raise SystemExit(f"{work} holds results of another budget ({path}); move it away first")
    if not path.exists():
        atomic_write_json(path, budget.to_dict())


def _identity(budget: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in budget.items() if key not in EXECUTION_FIELDS}


def write_output(out: Path, name: str, quick: bool, output: dict[str, Any],
                 started: float) -> dict[str, Any]:
    """Add the wall time and write ``out/<name>.json`` (``<name>_quick.json`` for smoke runs)."""
    output["wall_s"] = time.perf_counter() - started
    path = out / f"{name}{'_quick' if quick else ''}.json"
    atomic_write_json(path, output)
    print(f"wrote {path}")
    return output


def machine() -> dict[str, Any]:
    from hwnas.cost.engines import cpu_model

    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__}


def local_lut(work: Path) -> LatencyTable:
    """The ONNX Runtime 1-thread LUT of the space on this machine (built once, resumable)."""
    return build_lut(SPACE, make_engine("ort", threads=1), work / "lut-fbnet-cifar-ort-1t.json")


def load_data() -> CifarArrays:
    return load_cifar10()


def fixed_transitions(budget: Budget) -> dict[int, str]:
    return {layer: budget.transition_candidate for layer in get_space(SPACE).transition_layers}


def reference_target(cost_model: CostModel, budget: Budget) -> float:
    """The latency budget T of a search: ``cost_model``'s cost of the reference network."""
    return cost_model.cost(get_space(SPACE).uniform_arch(budget.reference_candidate))


def warm_up(cost_model: CostModel, data: CifarArrays, budget: Budget, work: Path,
            weight_sharing: str = "independent", residual_scale: float = 0.0) -> Path:
    """Train the supernet weights alone (uniform random paths) for ``budget.warmup_epochs``;
    every device's search starts from the returned checkpoint. ``cost_model`` is only recorded
    (theta is not trained). ``weight_sharing``, ``residual_scale``: ``hwnas.dnas.SuperNet``'s."""
    run_dir = work / ("warmup" + variant_suffix(weight_sharing=weight_sharing,
                                                residual_scale=residual_scale))
    if not (run_dir / "result.json").exists():
        torch.set_num_threads(budget.threads)
        weights, theta = search_batches(data, per_class=budget.search_per_class,
                                        batch_size=budget.batch_size, seed=budget.seed)
        print(f"warm-up: {budget.warmup_epochs} epochs on {weights.num_images} images",
              flush=True)
        run_dnas(get_space(SPACE), cost_model, weights, theta, epochs=budget.warmup_epochs,
                 warmup_epochs=budget.warmup_epochs, weight_lr=WEIGHT_LR, seed=budget.seed,
                 fixed_layers=fixed_transitions(budget), run_dir=run_dir,
                 resume=run_dir.exists(), num_samples=1, weight_sharing=weight_sharing,
                 residual_scale=residual_scale,
                 checkpoint_every=max(1, len(weights) // 2))
    return run_dir / "checkpoint.pt"


def search(name: str, cost_model: CostModel, data: CifarArrays, budget: Budget,
           work: Path, *, fbnet_loss: bool = False, capacity_level: str | None = None,
           weight_sharing: str = "independent", residual_scale: float = 0.0) -> SearchResult:
    """FBNet DNAS for ``cost_model``, cached by ``name``, from the shared warm-up: alpha 0.2,
    beta 0.6, ``budget.target_form`` with T from :func:`reference_target` (or, with
    ``capacity_level``, from :func:`capacity_matched_target`); with ``fbnet_loss``, the paper's
    loss without a target instead (``benchmarks/dnas_devices_loss``). ``weight_sharing="nested"``
    searches the shared-weight supernet (``hwnas.dnas.nested``) from its own warm-up, and
    ``residual_scale`` starts its residual blocks at that last-BN scale instead of 0.
    """
    suffix = variant_suffix(fbnet_loss=fbnet_loss, capacity_level=capacity_level,
                            weight_sharing=weight_sharing, residual_scale=residual_scale)
    run_dir = work / f"search-{name}{suffix}"
    if (run_dir / "result.json").exists():
        return SearchResult.load(run_dir / "result.json")
    warm_start = warm_up(cost_model, data, budget, work, weight_sharing, residual_scale)
    torch.set_num_threads(budget.threads)
    weights, theta = search_batches(data, per_class=budget.search_per_class,
                                    batch_size=budget.batch_size, seed=budget.seed)
    target = (None if fbnet_loss else
              capacity_matched_target(cost_model, budget, capacity_level) if capacity_level
              else reference_target(cost_model, budget))
    print(f"search {name}{suffix}: {weights.num_images} weight / {theta.num_images} theta "
          f"images, target {target}", flush=True)
    return run_dnas(get_space(SPACE), cost_model, weights, theta, epochs=budget.search_epochs,
                    weight_lr=WEIGHT_LR, seed=budget.seed, target_latency=target,
                    target_form=budget.target_form, warm_start=warm_start,
                    fixed_layers=fixed_transitions(budget), theta_lr=budget.theta_lr,
                    theta_estimator=budget.theta_estimator,
                    paths_per_batch=budget.paths_per_batch, weight_sharing=weight_sharing,
                    residual_scale=residual_scale,
                    run_dir=run_dir, resume=run_dir.exists(), num_samples=8,
                    checkpoint_every=max(1, len(weights) // 2))


def variant_suffix(*, fbnet_loss: bool = False, capacity_level: str | None = None,
                   weight_sharing: str = "independent", residual_scale: float = 0.0) -> str:
    """The name suffix of a search variant's folders and outputs ("" for the benchmark's own)."""
    return (("-fbnet-loss" if fbnet_loss else
             f"-capacity-{capacity_level}" if capacity_level else "")
            + ("" if weight_sharing == "independent" else f"-{weight_sharing}")
            + (f"-scale{residual_scale:g}" if residual_scale else ""))


def allowed_choices(budget: Budget) -> np.ndarray:
    """[L, K] mask of a search's choices: every candidate, only the fixed one at transitions."""
    space = get_space(SPACE)
    allowed = np.ones((space.num_layers, len(space.candidates)), dtype=bool)
    for layer, name in fixed_transitions(budget).items():
        allowed[layer] = False
        allowed[layer, space.candidates.index(name)] = True
    return allowed


def largest_within(proxy: CostModel, cost_model: CostModel, budget: Budget, target: float,
                   lower: float | None) -> tuple[int, ...] | None:
    """The choices of maximal ``proxy`` cost whose ``cost_model`` cost is in [lower, target]
    (exact: the derivation's knapsack with the proxy in place of log-probabilities)."""
    space = get_space(SPACE)
    costs = cost_model.layer_cost_matrix(space)
    found = most_probable_within(proxy.layer_cost_matrix(space).matrix, costs.matrix,
                                 allowed_choices(budget), costs.constant, target, lower=lower)
    return None if found is None else found[0]


def capacity_matched_target(cost_model: CostModel, budget: Budget, candidate: str) -> float:
    """A target rule that gives every device the same capacity: the smallest ``cost_model``
    cost of any network with at least the MFLOPs of the network with ``candidate`` at every
    layer (bisection over T; ``benchmarks/dnas_devices_bound``)."""
    space, flops = get_space(SPACE), FlopsCost()
    reference = cost_model.cost(space.uniform_arch(candidate))
    needed = flops.cost(space.uniform_arch(candidate))
    low, high = 0.3 * reference, 1.5 * reference
    for _ in range(40):
        middle = (low + high) / 2
        found = largest_within(flops, cost_model, budget, middle, None)
        if found is not None and flops.cost(space.to_arch(found)) >= needed:
            high = middle
        else:
            low = middle
    return high


def derived_network(result: SearchResult, cost_model: CostModel, budget: Budget) -> ArchSpec:
    """The network a benchmark trains for a search: the most probable one whose predicted cost
    meets the target (within [0.95 T, T] for the two-sided form;
    ``hwnas.dnas.result.derive_within_target``), recomputed from the saved ``P_theta`` so that
    results saved by earlier code get the same rule. A search without a target (FBNet's own
    loss) is held to the device's reference target."""
    space = get_space(SPACE)
    target = result.target_latency or reference_target(cost_model, budget)
    derived = derive_within_target(space, np.array(result.probabilities),
                                   cost_model.layer_cost_matrix(space), target, cost_model,
                                   lower=lower_bound(target, budget.target_form))
    return ArchSpec.from_string((derived or result.argmax).arch)


def train_network(name: str, arch: ArchSpec, data: CifarArrays, budget: Budget,
                  work: Path, recipe_seed: int | None = None) -> dict[str, Any]:
    """Top-1 of ``arch`` after the benchmark's identical recipe, cached by ``name``; a network
    that chose another input resolution (DMasking) trains on images resized to it.
    ``recipe_seed`` (default ``budget.seed``) seeds initialisation, augmentation and batch
    order; the images are always ``budget.seed``'s subset."""
    recipe_seed = budget.seed if recipe_seed is None else recipe_seed
    run_dir = work / (f"train-{name}" if recipe_seed == budget.seed
                      else f"train-{name}-seed{recipe_seed}")
    if (run_dir / "result.json").exists():
        return read_json(run_dir / "result.json", "training result")
    torch.set_num_threads(budget.threads)
    subset = data.subset(train_per_class=budget.train_per_class,
                         test_per_class=budget.test_per_class,
                         rng=np.random.default_rng(budget.seed))
    subset = cifar_at_resolution(subset, arch.resolution)
    recipe = TrainRecipe(epochs=budget.train_epochs, batch_size=budget.batch_size,
                         seed=recipe_seed)
    print(f"train {name} (seed {recipe_seed}): {arch.to_string()}", flush=True)
    result = train(arch, subset, recipe, run_dir, resume=(run_dir / "checkpoint.pt").exists(),
                   threads=budget.threads, eval_every=budget.train_epochs)
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
    # A discarded first pass: in a fresh process right after heavy compute, the first timings
    # ran 20-30 % slow here (the same network 2.20 ms first, 1.70-1.74 ms after).
    measure_networks(list(archs.values()), engine, WARMUP_PASS)
    stats = measure_networks(list(archs.values()), engine, BENCHMARK_TIMING)
    data = {"engine": engine.metadata(), "timing": BENCHMARK_TIMING.to_dict(),
            "ms": {name: timing.median_ms for name, timing in zip(archs, stats)},
            "p10_ms": {name: timing.p10_ms for name, timing in zip(archs, stats)},
            "p90_ms": {name: timing.p90_ms for name, timing in zip(archs, stats)}}
    atomic_write_json(path, data)
    return data
