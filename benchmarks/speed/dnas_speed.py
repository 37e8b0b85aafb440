"""DNAS step cost on the FBNet CIFAR space: child network vs ``sampled`` vs ``soft`` supernet.

One training step = forward + backward + SGD step (lr 0.1, momentum 0.9, weight decay 1e-4) on
the same batch of 64 random 32 x 32 images, channels_last, a fixed torch thread count (given by
``--threads``, else torch's default, recorded in the output). The three are timed side by side:
each round times one step of every variant in rotating order, after warm-up steps, and the
medians are reported. The supernet steps are :func:`hwnas.dnas.steps.weight_step`, i.e. the
library's own step, Gumbel sampling included. Because the sampled supernet runs a different
path every step, the child is a rotation of ``--children`` random architectures of the space.

Target: sampled <= 2 x child. Writes ``benchmarks/results/dnas_speed.json``
(``dnas_speed_quick.json`` with ``--quick``). Run it alone on an idle machine::

    python -m benchmarks.speed.dnas_speed           # 3 warm-up + 15 rounds: ~2-4 min, 1 thread
    python -m benchmarks.speed.dnas_speed --quick   # smoke test: batch 8, 1 round, ~10-20 s
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from hwnas.arch.build import build_model
from hwnas.dnas.steps import weight_step
from hwnas.dnas.supernet import SuperNet
from hwnas.io import atomic_write_json
from hwnas.spaces import get_space

SPACE = "fbnet-cifar"
TARGET_SAMPLED_OVER_CHILD = 2.0
RESULTS = Path(__file__).parents[1] / "results"


def sgd(parameters: list[torch.nn.Parameter]) -> torch.optim.SGD:
    return torch.optim.SGD(parameters, lr=0.1, momentum=0.9, weight_decay=1e-4)


def child_steps(space, count: int, seed: int, device: torch.device) -> Callable[..., None]:
    """A step function cycling over ``count`` random children of the space."""
    rng = np.random.default_rng(seed)
    children = [
        build_model(space.to_arch(choices)).to(device, memory_format=torch.channels_last)
        for choices in space.decisions.sample(count, rng)
    ]
    optimizers = [sgd(list(child.parameters())) for child in children]
    position = [0]

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        index = position[0] % count
        position[0] += 1
        loss = F.cross_entropy(children[index](images), labels)
        optimizers[index].zero_grad(set_to_none=True)
        loss.backward()
        optimizers[index].step()

    return step


def supernet_steps(space, mode: str, seed: int, device: torch.device) -> Callable[..., None]:
    supernet = SuperNet(space).to(device, memory_format=torch.channels_last)
    optimizer = sgd(supernet.weight_parameters())
    generator = torch.Generator().manual_seed(seed)

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        weight_step(supernet, optimizer, images, labels,
                    temperature=5.0, generator=generator, mode=mode)

    return step


def timed(step: Callable[..., None], images, labels, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    step(images, labels)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def measure(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    space = get_space(SPACE)
    steps = {
        "child": child_steps(space, args.children, args.seed, device),
        "sampled": supernet_steps(space, "sampled", args.seed, device),
        "soft": supernet_steps(space, "soft", args.seed, device),
    }
    generator = torch.Generator().manual_seed(args.seed)
    images = torch.randn(args.batch, 3, space.resolution, space.resolution, generator=generator)
    images = images.to(device, memory_format=torch.channels_last)
    labels = torch.randint(0, space.head.num_classes, (args.batch,), generator=generator)
    labels = labels.to(device)
    names = list(steps)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(args.warmup + args.repeats):
        rotation = names[round_index % 3:] + names[:round_index % 3]  # rotate who goes first
        for name in rotation:
            elapsed = timed(steps[name], images, labels, device)
            if round_index >= args.warmup:
                seconds[name].append(elapsed)
        print(f"round {round_index + 1}/{args.warmup + args.repeats}: "
              + ", ".join(f"{name} {seconds[name][-1]:.3f} s" for name in names
                          if seconds[name]), flush=True)
    return seconds


def summary(seconds: dict[str, list[float]], args: argparse.Namespace, threads_source: str
            ) -> dict[str, Any]:
    median = {name: statistics.median(values) for name, values in seconds.items()}
    sampled_over_child = median["sampled"] / median["child"]
    return {
        "space": SPACE,
        "batch": args.batch,
        "resolution": get_space(SPACE).resolution,
        "memory_format": "channels_last",
        "device": args.device,
        "threads": torch.get_num_threads(),
        "threads_source": threads_source,
        "warmup_rounds": args.warmup,
        "rounds": args.repeats,
        "children": args.children,
        "seed": args.seed,
        "step": "forward + backward + SGD step (lr 0.1, momentum 0.9, wd 1e-4)",
        "median_step_seconds": median,
        "step_seconds": seconds,
        "ratios": {
            "sampled_over_child": sampled_over_child,
            "soft_over_child": median["soft"] / median["child"],
            "soft_over_sampled": median["soft"] / median["sampled"],
        },
        "target": f"sampled <= {TARGET_SAMPLED_OVER_CHILD} x child",
        "target_met": sampled_over_child <= TARGET_SAMPLED_OVER_CHILD,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or None,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--children", type=int, default=8, help="random children to rotate")
    parser.add_argument("--threads", type=int, default=None, help="default: torch's default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke test: batch 8, 1 round")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.repeats, args.warmup, args.children = 8, 1, 0, 1
    threads_source = "--threads" if args.threads else "torch default"
    torch.set_num_threads(args.threads or torch.get_num_threads())  # fixed for the whole run
    results = summary(measure(args), args, threads_source)
    name = "dnas_speed_quick" if args.quick else "dnas_speed"
    atomic_write_json(args.out / f"{name}.json", results)
    print("median step: " + ", ".join(
        f"{key} {value:.3f} s" for key, value in results["median_step_seconds"].items()))
    print(f"ratios: {results['ratios']}; target met: {results['target_met']}")
    return results


if __name__ == "__main__":
    main()
