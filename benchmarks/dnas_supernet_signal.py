"""Does the searched supernet tell architectures apart? (Why ``dnas_devices`` misses its target.)

A device-specific network needs theta to trade accuracy against *that device's* latency, and the
accuracy side comes from the supernet alone. This benchmark measures that side for the two
supernets behind ``dnas_devices`` and ``dnas_quality`` (``hwnas.dnas.diagnostics``): the shared
weight warm-up and the final supernet of the search for this CPU. For each:

- the CE and accuracy of ``--paths`` uniformly random paths (transition layers fixed, as in the
  search) on the same ``--images`` CIFAR-10 test images, BN on batch statistics as the search
  compares paths: the spread between paths is all the accuracy signal theta can get;
- the additive per-candidate effects ``CE(a) ~ c + sum_l e[l, a_l]``: cross-validated R^2,
  split-half reproducibility, each candidate's mean effect, and whether the supernet prefers the
  candidates with more compute (Spearman rho of effect against MFLOPs, per layer);
- on ``--named-images`` other test images: the all-skip and all-k5_e6 paths, and every network
  of the work folder that was trained stand-alone with the benchmark recipe (seed 0), with the
  Kendall tau between the supernet's accuracy (and CE) of those networks and their top-1.

Writes ``benchmarks/results/dnas_supernet_signal.json``. Run after ``dnas_devices`` (it reads that
benchmark's searches and trainings from the work folder; about 18 minutes on 2 threads)::

    python -m benchmarks.dnas_supernet_signal
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau

from benchmarks import dnas_common as common
from hwnas.arch.spec import ArchSpec, SpecError
from hwnas.dnas.checkpoint import load_supernet_weights
from hwnas.dnas.config import with_added_defaults
from hwnas.dnas.diagnostics import fixed_test_images, random_paths, signal_report, uniform_path
from hwnas.dnas.search import fixed_choices
from hwnas.dnas.supernet import SuperNet
from hwnas.io import atomic_write_json, read_json
from hwnas.spaces import get_space

SUPERNETS = {"warm-up": "warmup", "search-local": "search-local"}


def supernet_options(run_dir: Path) -> dict[str, Any]:
    """The run's search config, with fields it predates at their defaults."""
    return with_added_defaults(read_json(run_dir / "config.json", "search config"))["search"]


def load_supernet(work: Path, folder: str, budget: common.Budget) -> SuperNet:
    space = get_space(common.SPACE)
    checkpoint = work / folder / "checkpoint.pt"
    if not checkpoint.exists():
        raise SystemExit(f"{checkpoint} is missing: run python -m benchmarks.dnas_devices first")
    sharing = supernet_options(work / folder)["weight_sharing"]
    supernet = SuperNet(space, sharing).to(memory_format=torch.channels_last)
    load_supernet_weights(checkpoint, supernet)
    supernet.fix_layers(transition_choices(budget))
    return supernet


def transition_choices(budget: common.Budget) -> dict[int, int]:
    fixed = tuple(sorted(common.fixed_transitions(budget).items()))
    return fixed_choices(get_space(common.SPACE), fixed)


def trained_networks(work: Path) -> dict[str, tuple[tuple[int, ...], float]]:
    """``{name: (choices, top1)}`` of the seed-0 trainings of networks in the search space."""
    space = get_space(common.SPACE)
    networks = {}
    for result_path in sorted(work.glob("train-*/result.json")):
        name = result_path.parent.name.removeprefix("train-")
        if "-seed" in name:
            continue
        result = read_json(result_path, "training result")
        try:
            choices = space.choices_of(ArchSpec.from_string(result["arch"]))
        except SpecError:
            continue  # MobileNetV2, DMasking: not paths of this supernet
        networks[name] = (choices, float(result["final_top1"]))
    return networks


def measure(supernet: SuperNet, images: tuple[torch.Tensor, torch.Tensor], paths: list,
            named_images: tuple[torch.Tensor, torch.Tensor], trained: dict,
            budget: common.Budget) -> dict[str, Any]:
    space = get_space(common.SPACE)
    started = time.perf_counter()
    extremes = {name: uniform_path(space.num_layers, space.candidates.index(name),
                                   transition_choices(budget)) for name in ("skip", "k5_e6")}
    named = {**{f"all-{name}": path for name, path in extremes.items()},
             **{name: choices for name, (choices, _) in trained.items()}}
    report = signal_report(supernet, paths, images, named, named_images,
                           progress=lambda done: print(f"  {done}/{len(paths)} paths", flush=True)
                           if done % 50 == 0 else None)
    top1 = [trained[name][1] for name in trained]

    def tau(scores: dict[str, float], sign: float) -> float | None:
        return (float(kendalltau([sign * scores[name] for name in trained], top1).statistic)
                if len(trained) > 2 else None)

    report["stand_alone_top1"] = {name: value for name, (_, value) in trained.items()}
    report["kendall_tau_supernet_vs_stand_alone"] = {
        "accuracy": tau(report["supernet_accuracy"], 1.0),
        "cross_entropy": tau(report["supernet_cross_entropy"], -1.0)}
    report["seconds"] = time.perf_counter() - started
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", type=int, default=400)
    parser.add_argument("--images", type=int, default=250, help="test images per random path")
    parser.add_argument("--named-images", type=int, default=2000,
                        help="test images for the all-skip/all-k5_e6 and trained networks")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    budget, work = common.Budget(), common.WORK
    common.check_work_budget(work, budget)
    torch.set_num_threads(budget.threads)
    data = common.load_data()
    images = fixed_test_images(data, arguments.images, budget.seed)
    named_images = fixed_test_images(data, arguments.named_images, budget.seed + 1)
    space = get_space(common.SPACE)
    paths = random_paths(space.num_layers, len(space.candidates), transition_choices(budget),
                         arguments.paths, np.random.default_rng(budget.seed))
    trained = trained_networks(work)
    output: dict[str, Any] = {"budget": budget.to_dict(), "machine": common.machine(),
                              "images": len(images[1]), "named_images": len(named_images[1]),
                              "supernets": {}}
    for label, folder in SUPERNETS.items():
        # each supernet's measurement is cached, so a killed run resumes at the next one
        cache = work / (f"supernet-signal-{label}-{arguments.paths}p-{arguments.images}i-"
                        f"{arguments.named_images}n.json")
        if not cache.exists():
            print(f"supernet {label}", flush=True)
            atomic_write_json(cache, measure(load_supernet(work, folder, budget), images, paths,
                                             named_images, trained, budget))
        output["supernets"][label] = read_json(cache, "supernet signal")
    return common.write_output(arguments.out, "dnas_supernet_signal", False, output, started)


if __name__ == "__main__":
    main()
