"""``hwnas train ARCH`` and ``hwnas eval RUN``: train an architecture from scratch on CIFAR-10.

The data is ``cifar10_jpeg_all.npz`` from the data folder (``--data-dir``, ``$HWNAS_DATA``,
``../shared/data``), decoded once into ``$HWNAS_CACHE`` (default ``~/.cache/hwnas``), or the
official python/binary CIFAR-10 distribution in the folder given by ``--cifar``. The settings
are :class:`hwnas.train.recipe.TrainRecipe`'s; see :func:`hwnas.train.loop.train` for the run
folder. torch is imported inside the commands so that ``hwnas --help`` stays fast.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from hwnas.arch.spec import ArchSpec
from hwnas import settings
from hwnas.cli import options
from hwnas.cli.common import TrainBars, console, load_cifar, progress_bars
from hwnas.errors import HwnasError
from hwnas.runs import probe_run
from hwnas.train.recipe import TrainRecipe

app = typer.Typer(
    help="Train an architecture from scratch on CIFAR-10, and evaluate a trained run.",
    no_args_is_help=True,
)


def check_fits_cifar(arch: ArchSpec, class_count: int) -> None:
    if arch.num_classes != class_count:
        raise HwnasError(
            f"architecture has {arch.num_classes} classes but CIFAR-10 has {class_count} "
            f"(pass --num-classes {class_count})"
        )
    if arch.in_channels != 3:
        raise HwnasError(
            f"architecture takes {arch.in_channels}-channel inputs but CIFAR-10 images are RGB"
        )


def at_resolution(data: Any, resolution: int) -> Any:
    """CIFAR-10 resized to the architecture's input (a DMasking search may pick 24 or 28 px)."""
    if resolution == data.train_x.shape[1]:
        return data
    from hwnas.data.batches import cifar_at_resolution

    console.print(f"resizing CIFAR-10 images to {resolution}x{resolution} for this architecture")
    return cifar_at_resolution(data, resolution)


def select(data: Any, train_per_class: int | None, test_per_class: int | None, seed: int) -> Any:
    """Class-balanced subsets. Each split has its own generator, so ``eval --seed S
    --test-per-class N`` picks the same test images as ``train --seed S --test-per-class N``."""
    import numpy as np

    if train_per_class is not None:
        data = data.subset(train_per_class=train_per_class, rng=np.random.default_rng([seed, 0]))
    if test_per_class is not None:
        data = data.subset(test_per_class=test_per_class, rng=np.random.default_rng([seed, 1]))
    return data


def _default_run_dir(arch: ArchSpec, seed: int) -> Path:
    digest = hashlib.sha256(arch.to_string().encode()).hexdigest()[:10]
    return Path("runs") / f"train-{digest}-seed{seed}"


@app.command("train")
@options.config_command(TrainRecipe, "train")
def train_command(
    config: TrainRecipe,
    arch: Annotated[str, typer.Argument(
        metavar="ARCH", help="Zoo model name, arch string (contains ':') or JSON spec file.",
        show_default=False)],
    resolution: Annotated[Optional[int], typer.Option(
        min=1, help="Override the arch's input resolution (CIFAR-10 needs 32).")] = None,
    num_classes: Annotated[Optional[int], typer.Option(
        min=1, help="Override the arch's classes (CIFAR-10 needs 10).")] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Run folder (default runs/train-<arch hash>-seed<seed>).",
        callback=options.output_path)] = None,
    resume: options.Resume = False,
    data_dir: options.DataDir = None,
    cifar: options.Cifar = None,
) -> None:
    """Train ARCH from scratch on CIFAR-10 (SGD + cosine, crop + flip), testing top-1."""
    from hwnas.arch.load import load_arch
    from hwnas.train.loop import train

    spec = load_arch(arch, resolution=resolution, num_classes=num_classes)
    run_dir = out if out is not None else _default_run_dir(spec, config.seed)
    probe_run(run_dir, command="train", resume=resume)
    data = load_cifar(cifar, data_dir)
    check_fits_cifar(spec, len(data.class_names))
    data = at_resolution(select(data, config.subset_per_class, config.test_per_class,
                                config.seed), spec.resolution)
    from hwnas.compute import free_cores

    cores = len(os.sched_getaffinity(0))
    threads = config.threads or free_cores()
    busy = "" if config.threads or threads == cores else \
        f"; other processes hold {cores - threads} of {cores} cores"
    console.print(f"training {spec.to_string()}\n  -> {run_dir} ({len(data.train_y)} train images, "
                  f"{threads} threads{busy})", soft_wrap=True)
    config = settings.replace(config, threads=threads)
    with progress_bars("loss") as bar:
        result = train(spec, data, config, run_dir, resume=resume, progress=TrainBars(bar))
    typer.echo(
        f"final top-1 {result.final_top1:.2f} % (best {result.best_top1:.2f} % at epoch "
        f"{result.best_epoch}), {result.epochs} epochs, {result.wall_seconds:.1f} s -> {run_dir}"
    )


@app.command("eval")
def eval_command(
    target: Annotated[Path, typer.Argument(
        metavar="RUN", help="A run folder of 'hwnas train' or its checkpoint.pt.",
        show_default=False)],
    data_dir: options.DataDir = None,
    cifar: options.Cifar = None,
    test_per_class: Annotated[Optional[int], typer.Option(
        "--test-per-class", min=1,
        help="Evaluate on a class-balanced test subset of N per class (default: all).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Evaluation batch size.")] = 256,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the test subset.")] = 0,
    threads: Annotated[Optional[int], typer.Option(
        "--threads", min=1, help="torch threads (default: all cores).")] = None,
) -> None:
    """Top-1 accuracy of a trained run's checkpoint on the CIFAR-10 test split."""
    import torch

    from hwnas.compute import free_cores, torch_threads
    from hwnas.data.batches import BatchIterator
    from hwnas.train.loop import evaluate, load_checkpoint, model_from_checkpoint

    state = load_checkpoint(target)
    model = model_from_checkpoint(state).to(memory_format=torch.channels_last)
    data = load_cifar(cifar, data_dir)
    check_fits_cifar(model.arch, len(data.class_names))
    data = at_resolution(select(data, None, test_per_class, seed), model.arch.resolution)
    batches = BatchIterator(data.test_x, data.test_y, batch_size, train=False)
    with torch_threads(threads or free_cores()):
        top1 = evaluate(model, batches)
    typer.echo(f"top-1 {top1:.2f} % on {len(data.test_y)} test images "
               f"(epoch {state['epoch']}, {model.arch.to_string()})")
