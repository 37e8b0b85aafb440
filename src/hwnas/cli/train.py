"""``hwnas train ARCH`` and ``hwnas eval RUN``: train an architecture from scratch on CIFAR-10.

The data is ``cifar10_jpeg_all.npz`` from the data folder (``--data-dir``, ``$HWNAS_DATA``,
``../shared/data``), decoded once into ``$HWNAS_CACHE`` (default ``~/.cache/hwnas``), or the
official python/binary CIFAR-10 distribution in the folder given by ``--cifar``. The recipe is
:class:`hwnas.train.recipe.TrainRecipe`; see :func:`hwnas.train.loop.train` for the run folder.
torch is imported inside the commands so that ``hwnas --help`` stays fast.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Annotated, Any, Mapping, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hwnas.arch.spec import ArchSpec
from hwnas.errors import HwnasError

app = typer.Typer(
    help="Train an architecture from scratch on CIFAR-10, and evaluate a trained run.",
    no_args_is_help=True,
)
console = Console(stderr=True)

DataDirOption = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Data folder holding cifar10_jpeg_all.npz (else $HWNAS_DATA)."),
]
CifarOption = Annotated[
    Optional[Path],
    typer.Option(
        "--cifar",
        help="Official CIFAR-10 python/binary distribution folder, or a JPEG .npz, instead of "
        "the data folder's cifar10_jpeg_all.npz.",
    ),
]
ThreadsOption = Annotated[
    Optional[int], typer.Option("--threads", min=1, help="torch threads (default: all cores).")
]
TestPerClassOption = Annotated[
    Optional[int],
    typer.Option("--test-per-class", min=1,
                 help="Evaluate on a class-balanced test subset of N per class (default: all)."),
]


def _load_arch(text: str, resolution: int | None, num_classes: int | None) -> ArchSpec:
    from hwnas.arch.load import load_arch

    return load_arch(text, resolution=resolution, num_classes=num_classes)


def _check_fits_cifar(arch: ArchSpec, class_count: int) -> None:
    if arch.num_classes != class_count:
        raise HwnasError(
            f"architecture has {arch.num_classes} classes but CIFAR-10 has {class_count} "
            f"(pass --num-classes {class_count})"
        )
    if arch.in_channels != 3:
        raise HwnasError(
            f"architecture takes {arch.in_channels}-channel inputs but CIFAR-10 images are RGB"
        )


def _at_resolution(data: Any, resolution: int) -> Any:
    """CIFAR-10 resized to the architecture's input (a DMasking search may pick 24 or 28 px)."""
    if resolution == data.train_x.shape[1]:
        return data
    from hwnas.dnas.masking import cifar_at_resolution

    console.print(f"resizing CIFAR-10 images to {resolution}x{resolution} for this architecture")
    return cifar_at_resolution(data, resolution)


def _default_threads(threads: int | None) -> int:
    return threads if threads is not None else len(os.sched_getaffinity(0))


def _load_data(cifar: Path | None, data_dir: Path | None) -> Any:
    """Load CIFAR-10 with a rich bar for the one-time JPEG decode; say how long it took."""
    from hwnas.data.cifar import load_cifar10

    started = time.perf_counter()
    decoded = 0
    with Progress(TextColumn("decoding CIFAR-10 JPEGs (once)"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("decode", total=None)

        def advance(done: int, total: int) -> None:
            nonlocal decoded
            decoded = done
            bar.update(task, completed=done, total=total)

        data = load_cifar10(cifar, data_dir, progress=advance)
    seconds = time.perf_counter() - started
    how = f"decoded {decoded} JPEGs and cached them" if decoded else "loaded"
    console.print(f"{how}: {len(data.train_y)} train / {len(data.test_y)} test images "
                  f"in {seconds:.1f} s ({data.source})")
    return data


class RichTrainProgress:
    """Draws one rich bar per epoch and prints each finished epoch's numbers."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task: Any = None

    def epoch_started(self, epoch: int, epochs: int, batches: int) -> None:
        self.task = self.bar.add_task(f"epoch {epoch}/{epochs}", total=batches, loss=float("nan"))

    def batch_done(self, loss: float) -> None:
        self.bar.update(self.task, advance=1, loss=loss)

    def epoch_done(self, record: Mapping[str, Any]) -> None:
        self.bar.remove_task(self.task)
        top1 = record["test_top1"]
        test = f"test top-1 {top1:.2f} %" if top1 is not None else "test not evaluated"
        self.bar.console.print(
            f"epoch {record['epoch']}: loss {record['loss']:.4f}, train acc "
            f"{record['train_acc']:.2f} %, {test}, lr {record['lr']:.4g}, {record['seconds']:.1f} s"
        )


def _select(data: Any, train_per_class: int | None, test_per_class: int | None, seed: int) -> Any:
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
def train_command(
    arch: Annotated[str, typer.Argument(
        metavar="ARCH", help="Zoo model name, arch string (contains ':') or JSON spec file.",
        show_default=False)],
    data_dir: DataDirOption = None,
    cifar: CifarOption = None,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 10,
    subset_per_class: Annotated[Optional[int], typer.Option(
        min=1, help="Train on a class-balanced subset of N per class (default: all).")] = None,
    test_per_class: TestPerClassOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Mini-batch size.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate (cosine decay to 0).")] = 0.025,
    weight_decay: Annotated[float, typer.Option(help="L2 on conv/linear weights.")] = 5e-4,
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing in [0, 1).")] = 0.0,
    grad_clip: Annotated[float, typer.Option(
        help="Clip the gradient norm at this value (0: no clipping).")] = 5.0,
    warmup_fraction: Annotated[float, typer.Option(
        help="Fraction of all steps spent in linear warm-up.")] = 0.1,
    eval_every: Annotated[int, typer.Option(
        min=1, help="Test every N epochs and after the last.")] = 1,
    resolution: Annotated[Optional[int], typer.Option(
        min=1, help="Override the arch's input resolution (CIFAR-10 needs 32).")] = None,
    num_classes: Annotated[Optional[int], typer.Option(
        min=1, help="Override the arch's classes (CIFAR-10 needs 10).")] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Run folder (default runs/train-<arch hash>-seed<seed>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run folder's checkpoint.")] = False,
    seed: Annotated[int, typer.Option(min=0, help="Seed: init, order, augmentation, subset.")] = 0,
    threads: ThreadsOption = None,
) -> None:
    """Train ARCH from scratch on CIFAR-10 (SGD + cosine, crop + flip), testing top-1."""
    from hwnas.train.loop import train
    from hwnas.train.recipe import TrainRecipe

    spec = _load_arch(arch, resolution, num_classes)
    recipe = TrainRecipe(
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        label_smoothing=label_smoothing, warmup_fraction=warmup_fraction, seed=seed,
        grad_clip_norm=grad_clip or None,
    )
    data = _load_data(cifar, data_dir)
    _check_fits_cifar(spec, len(data.class_names))
    data = _at_resolution(_select(data, subset_per_class, test_per_class, seed), spec.resolution)
    run_dir = out if out is not None else _default_run_dir(spec, seed)
    extra = {"data_selection": {"subset_per_class": subset_per_class,
                                "test_per_class": test_per_class, "subset_seed": seed}}
    console.print(f"training {spec.to_string()}\n  -> {run_dir} ({len(data.train_y)} train images, "
                  f"{_default_threads(threads)} threads)", soft_wrap=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        result = train(spec, data, recipe, run_dir, resume=resume,
                       threads=_default_threads(threads), eval_every=eval_every,
                       config_extra=extra, progress=RichTrainProgress(bar))
    typer.echo(
        f"final top-1 {result.final_top1:.2f} % (best {result.best_top1:.2f} % at epoch "
        f"{result.best_epoch}), {result.epochs} epochs, {result.wall_seconds:.1f} s -> {run_dir}"
    )


@app.command("eval")
def eval_command(
    target: Annotated[Path, typer.Argument(
        metavar="RUN", help="A run folder of 'hwnas train' or its checkpoint.pt.",
        show_default=False)],
    data_dir: DataDirOption = None,
    cifar: CifarOption = None,
    test_per_class: TestPerClassOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Evaluation batch size.")] = 256,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the test subset.")] = 0,
    threads: ThreadsOption = None,
) -> None:
    """Top-1 accuracy of a trained run's checkpoint on the CIFAR-10 test split."""
    import torch

    from hwnas.data.batches import BatchIterator
    from hwnas.train.loop import evaluate, load_checkpoint, model_from_checkpoint

    state = load_checkpoint(target)
    model = model_from_checkpoint(state).to(memory_format=torch.channels_last)
    data = _load_data(cifar, data_dir)
    _check_fits_cifar(model.arch, len(data.class_names))
    data = _at_resolution(_select(data, None, test_per_class, seed), model.arch.resolution)
    batches = BatchIterator(data.test_x, data.test_y, batch_size, train=False)
    previous = torch.get_num_threads()
    torch.set_num_threads(_default_threads(threads))
    try:
        top1 = evaluate(model, batches)
    finally:
        torch.set_num_threads(previous)
    typer.echo(f"top-1 {top1:.2f} % on {len(data.test_y)} test images "
               f"(epoch {state['epoch']}, {model.arch.to_string()})")
