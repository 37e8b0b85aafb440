"""Can a CPU-minutes supernet be made to tell architectures apart? Five warm-up variants.

``dnas_supernet_signal`` found the benchmark's warm-up supernet blind to capacity: the all-skip
path's CE equals the all-k5_e6 path's. One mechanism is visible in its weights: every searched
candidate is a residual block whose last BN scale starts at 0 ("zero-gamma",
``hwnas.arch.build.initialise_weights``), and with one of nine candidates trained per step the
scales stay near 0, so the searched blocks add almost nothing to any path and the six fixed
transition blocks carry the network. This benchmark trains the same 6-epoch warm-up (same data,
learning rate, fixed transitions, uniform random paths) with the remedies the literature
suggests, each alone or combined, and measures every supernet like ``dnas_supernet_signal``:

- ``independent``: the benchmark's own warm-up (``dnas_common.warm_up``; FBNet's supernet);
- ``independent, 6 more epochs``: the same supernet trained for 6 more epochs (a new cosine
  cycle): does more of the same help?
- ``nested``: the candidates of a layer are slices of one largest block (``hwnas.dnas.nested``;
  Single-Path NAS, FBNetV2), so every step trains the weights every candidate uses;
- ``nested, residual scale 0.25`` and ``nested, residual scale 1``, ``independent, residual
  scale 1``: the residual blocks start at that last-BN scale instead of 0.

For each: the training curve (weight CE and accuracy per epoch), the mean |last BN scale| of the
searched residual candidates per layer, the CE of 200 random paths on 250 test images with the
additive fit and the Spearman rho of candidate effects against MFLOPs, and the CE of the
all-skip, all-k3_e1, all-k3_e3 and all-k5_e6 paths on 1,000 other test images. For comparison,
the same last-BN scales in the networks of this space that ``dnas_devices`` and
``dnas_quality`` trained stand-alone (10 epochs on 5,000 images; read from their checkpoints in
the work folder, so run those benchmarks first), and three more networks trained with the same
recipe: the all-skip, all-k3_e3 and all-k5_e6 networks (transitions fixed), the smallest, the
reference and the largest of the space, to see how much the searched layers' choice can change
accuracy. Writes ``benchmarks/results/dnas_supernet_remedies.json``. Each warm-up (13-17
minutes on one thread), measurement (6-10 minutes) and training is cached in the work folder;
run::

    python -m benchmarks.dnas_supernet_remedies
    # or in parts, side by side on two cores, then the command above to collect:
    python -m benchmarks.dnas_supernet_remedies --only nested --threads 1
    python -m benchmarks.dnas_supernet_remedies --train-only k5_e6 --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import dnas_common as common
from benchmarks.dnas_supernet_signal import load_supernet, supernet_options, transition_choices
from hwnas.arch.build import build_model
from hwnas.arch.spec import ArchSpec, SpecError
from hwnas.cost.flops import FlopsCost
from hwnas.dnas import run_dnas
from hwnas.dnas.data import search_batches
from hwnas.dnas.diagnostics import fixed_test_images, random_paths, signal_report, uniform_path
from hwnas.io import atomic_write_json, read_json
from hwnas.spaces import get_space
from hwnas.train.loop import load_checkpoint

#: label -> (weight sharing, initial residual scale, continue the benchmark's warm-up)
VARIANTS: dict[str, tuple[str, float, bool]] = {
    "independent": ("independent", 0.0, False),
    "independent, 6 more epochs": ("independent", 0.0, True),
    "nested": ("nested", 0.0, False),
    "nested, residual scale 0.25": ("nested", 0.25, False),
    "nested, residual scale 1": ("nested", 1.0, False),
    "independent, residual scale 1": ("independent", 1.0, False),
}
EXTREMES = ("skip", "k3_e1", "k3_e3", "k5_e6")
#: trained stand-alone with the benchmark recipe: is the accuracy landscape over the searched
#: layers flat at this compute, as the residual scales suggest?
TRAINED_EXTREMES = ("skip", "k3_e3", "k5_e6")
#: more training seeds of the all-skip network (5.5 minutes each): its seed-0 top-1 beat every
#: searched network's
SKIP_SEEDS = (1, 2)


def extreme_network(name: str, budget: common.Budget) -> ArchSpec:
    """The network with candidate ``name`` in every searched layer (transitions fixed)."""
    space = get_space(common.SPACE)
    return space.to_arch(uniform_path(space.num_layers, space.candidates.index(name),
                                      transition_choices(budget)))


def train_extreme(name: str, data: Any, budget: common.Budget, work: Path,
                  seed: int | None = None) -> dict[str, Any]:
    """``all-<name>`` trained with the benchmark's recipe (cached as ``train-all-<name>``;
    ``seed``: the recipe's seed, default the budget's)."""
    return common.train_network(f"all-{name}", extreme_network(name, budget), data, budget, work,
                                recipe_seed=seed)


def warm_up(label: str, data: Any, budget: common.Budget, work: Path) -> Path:
    """The run folder of ``label``'s warm-up, trained if it is not cached."""
    sharing, scale, continued = VARIANTS[label]
    table = common.local_lut(common.WORK)
    if not continued:
        return common.warm_up(table, data, budget, work, sharing, scale).parent
    start = common.warm_up(table, data, budget, work)
    run_dir = work / "warmup-continued"
    if not (run_dir / "result.json").exists():
        torch.set_num_threads(budget.threads)
        weights, theta = search_batches(data, per_class=budget.search_per_class,
                                        batch_size=budget.batch_size, seed=budget.seed)
        print(f"{label}: {budget.warmup_epochs} more epochs", flush=True)
        run_dnas(get_space(common.SPACE), table, weights, theta, epochs=budget.warmup_epochs,
                 warmup_epochs=budget.warmup_epochs, weight_lr=common.WEIGHT_LR,
                 seed=budget.seed + 1, fixed_layers=common.fixed_transitions(budget),
                 run_dir=run_dir, resume=run_dir.exists(), num_samples=1, warm_start=start,
                 checkpoint_every=max(1, len(weights) // 2))
    return run_dir


def measure(run_dir: Path, data: Any, budget: common.Budget, paths: int, images: int,
            named_images: int) -> dict[str, Any]:
    space, fixed = get_space(common.SPACE), transition_choices(budget)
    supernet = load_supernet(run_dir.parent, run_dir.name, budget)
    random = random_paths(space.num_layers, len(space.candidates), fixed, paths,
                          np.random.default_rng(budget.seed))
    named = {f"all-{name}": uniform_path(space.num_layers, space.candidates.index(name), fixed)
             for name in EXTREMES}
    started = time.perf_counter()
    report = signal_report(supernet, random, fixed_test_images(data, images, budget.seed),
                           named, fixed_test_images(data, named_images, budget.seed + 1),
                           progress=lambda done: print(f"  {done}/{paths} paths", flush=True)
                           if done % 50 == 0 else None)
    history = [json.loads(line) for line in
               (run_dir / "history.jsonl").read_text().splitlines()]
    report["training"] = [{"epoch": row["epoch"], "weight_ce": row["weight_ce"],
                           "weight_accuracy": row["weight_accuracy"]} for row in history]
    options = supernet_options(run_dir)
    report["weight_sharing"] = options["weight_sharing"]
    report["residual_scale"] = options["residual_scale"]
    report["seconds"] = time.perf_counter() - started
    return report


def extremes(data: Any, budget: common.Budget, work: Path) -> dict[str, dict[str, Any]]:
    """The :data:`TRAINED_EXTREMES` networks trained stand-alone: top-1, MFLOPs, this CPU's
    predicted (LUT) and measured (ONNX Runtime, 1 thread; time it alone) latency."""
    networks = {f"all-{name}": extreme_network(name, budget) for name in TRAINED_EXTREMES}
    top1 = {name: train_extreme(name.removeprefix("all-"), data, budget, work)["final_top1"]
            for name in networks}
    other_seeds = {seed: train_extreme("skip", data, budget, work, seed)["final_top1"]
                   for seed in SKIP_SEEDS}
    measured = common.measured_latency(networks, work, "latency-supernet-remedies.json")["ms"]
    table, flops = common.local_lut(common.WORK), FlopsCost()
    output = {name: {"top1": top1[name], "mflops": flops.cost(arch),
                     "predicted_ms": table.cost(arch), "latency_ms": measured[name]}
              for name, arch in networks.items()}
    output["all-skip"]["top1_other_seeds"] = other_seeds
    return output


def trained_residual_scales(work: Path) -> dict[str, dict[str, Any]]:
    """Mean |last BN scale| of each searched layer's block (None: not a residual block) in
    every stand-alone training (any seed) of a network of the space whose checkpoint is in
    ``work``, with its top-1."""
    space = get_space(common.SPACE)
    scales = {}
    for checkpoint in sorted(work.glob("train-*/checkpoint.pt")):
        state = load_checkpoint(checkpoint)
        arch = ArchSpec.from_json(state["arch"])
        try:
            space.choices_of(arch)
        except SpecError:
            continue  # MobileNetV2, DMasking networks
        blocks = build_model(arch).blocks  # only asked which blocks are residual
        searched = [layer not in space.transition_layers and getattr(block, "has_residual", False)
                    for layer, block in enumerate(blocks)]
        per_layer = [float(state["model"][f"blocks.{layer}.project.1.weight"].abs().mean())
                     if residual else None for layer, residual in enumerate(searched)]
        values = [value for value in per_layer if value is not None]
        scales[checkpoint.parent.name.removeprefix("train-")] = {
            "by_layer": per_layer, "mean_searched": float(np.mean(values)) if values else None,
            "top1": read_json(checkpoint.parent / "result.json", "training")["final_top1"]}
    return scales


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", type=int, default=200)
    parser.add_argument("--images", type=int, default=250)
    parser.add_argument("--named-images", type=int, default=1000)
    parser.add_argument("--only", choices=tuple(VARIANTS), action="append",
                        help="train or measure only these variants (repeatable), e.g. to run "
                             "two variants in two processes side by side")
    parser.add_argument("--train-only", choices=TRAINED_EXTREMES,
                        help="only train this all-<candidate> network (to run the "
                             "trainings in two processes side by side)")
    parser.add_argument("--seed", type=int, help="with --train-only: the recipe's seed")
    parser.add_argument("--threads", type=int, help="torch threads (default: the budget's)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    budget, work = common.Budget(), common.WORK
    if arguments.threads:
        budget = replace(budget, threads=arguments.threads)
    common.check_work_budget(work, budget)
    torch.set_num_threads(budget.threads)
    data = common.load_data()
    if arguments.train_only:
        return train_extreme(arguments.train_only, data, budget, work, arguments.seed)
    output: dict[str, Any] = {"budget": budget.to_dict(), "machine": common.machine(),
                              "paths": arguments.paths, "images": arguments.images,
                              "named_images": arguments.named_images, "variants": {}}
    for label in arguments.only or VARIANTS:
        run_dir = warm_up(label, data, budget, work)
        cache = run_dir / (f"signal-{arguments.paths}p-{arguments.images}i-"
                           f"{arguments.named_images}n.json")
        if not cache.exists():
            print(f"measuring {label}", flush=True)
            atomic_write_json(cache, measure(run_dir, data, budget, arguments.paths,
                                             arguments.images, arguments.named_images))
        output["variants"][label] = read_json(cache, "supernet signal")
    if arguments.only:
        print("measured only some variants: no summary written")
        return output
    output["extremes"] = extremes(data, budget, work)
    output["trained_networks"] = trained_residual_scales(work)
    return common.write_output(arguments.out, "dnas_supernet_remedies", False, output, started)


if __name__ == "__main__":
    main()
