"""``hwnas search dmasking``: DMaskingNAS (FBNetV2) channel + resolution search on CIFAR-10.

    hwnas lut build --space dmasking-cifar --calibration 0 --out luts/dmasking-cifar-ort1.json
    hwnas search dmasking --cost luts/dmasking-cifar-ort1.json --epochs 8 --out runs/dmasking

Same run directory, resume (``--resume``) and plots as ``hwnas search dnas``; the search itself
lives in :mod:`hwnas.dnas.dmasking_search`. ``--cost``: a LUT of the space (or of
``dmasking-cifar-sparse``, interpolated), ``flops`` or ``params``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hwnas.cli import options
from hwnas.cli.dnas import DnasProgressBar, console, print_result
from hwnas.errors import HwnasError

SPACES = ("dmasking-cifar",)


def resolve_dmasking_cost(text: str) -> Any:
    """``flops``, ``params`` or the path of a LUT file."""
    if text == "flops":
        from hwnas.cost.flops import FlopsCost

        return FlopsCost()
    if text == "params":
        from hwnas.cost.flops import ParamsCost

        return ParamsCost()
    path = Path(text)
    if not path.is_file():
        raise HwnasError(f"--cost {text!r} is not a LUT file (hwnas lut build --space "
                         f"dmasking-cifar), flops or params")
    from hwnas.cost.lut import LatencyTable

    return LatencyTable.load(path)


def run_with_progress(space: Any, cost_model: Any, weights: Any, theta: Any,
                      **options: Any) -> Any:
    """:func:`run_dmasking` with a rich progress bar on stderr."""
    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
    )

    from hwnas.dnas.dmasking_search import run_dmasking

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        progress = DnasProgressBar(bar, {"weights": len(weights), "theta": len(theta)})
        return run_dmasking(space, cost_model, weights, theta, progress=progress, **options)


def dmasking_command(
    cost: Annotated[str, typer.Option(
        "--cost", help="LUT file of dmasking-cifar (hwnas lut build), flops or params.")],
    space: Annotated[str, typer.Option("--space", help="DMasking space.")] = "dmasking-cifar",
    epochs: options.Epochs = 8,
    warmup_epochs: options.WarmupEpochs = 2,
    subset_per_class: options.SubsetPerClass = 250,
    batch_size: options.BatchSize = 64,
    mode: Annotated[str, typer.Option(
        help="Blocks: sampled (one per layer and step) or soft (all). Masks are always soft.")]
        = "sampled",
    cost_mode: Annotated[str, typer.Option(
        "--cost-mode", help="effective (FBNetV2 effective shape) or expected (exact E).")]
        = "effective",
    weight_lr: options.WeightLr = 0.025,
    theta_lr: options.ThetaLr = 0.01,
    alpha: options.Alpha = 0.2,
    beta: options.Beta = 0.6,
    target_latency: options.TargetLatency = None,
    samples: options.Samples = 10,
    seed: options.Seed = 0,
    threads: options.Threads = 1,
    out: options.RunDirectory = None,
    resume: options.Resume = False,
    data_dir: options.DataDir = None,
    cifar: options.Cifar = None,
) -> None:
    """DMaskingNAS on CIFAR-10: widths, resolution and blocks with shared-weight masks."""
    import torch

    from hwnas.cli.train import _load_data
    from hwnas.dnas.data import search_batches
    from hwnas.spaces import get_space

    if space not in SPACES:
        raise HwnasError(f"unknown --space {space!r} for dmasking (known: {', '.join(SPACES)})")
    torch.set_num_threads(threads)
    search_space = get_space(space)
    cost_model = resolve_dmasking_cost(cost)
    from hwnas.dnas.dmasking_cost import ShapeCostTables

    ShapeCostTables(search_space, cost_model, mode=cost_mode)  # fail before loading CIFAR-10
    data = _load_data(cifar, data_dir)
    weights, theta = search_batches(data, per_class=subset_per_class, batch_size=batch_size,
                                    seed=seed)
    run_dir = out or Path("runs") / f"dmasking-{space}-{Path(cost).stem}-seed{seed}"
    console.print(f"searching {space} for {cost_model.name} ({cost_model.unit}): "
                  f"{weights.num_images} weight / {theta.num_images} theta images -> {run_dir}")
    result = run_with_progress(
        search_space, cost_model, weights, theta, epochs=epochs, warmup_epochs=warmup_epochs,
        weight_lr=weight_lr, theta_lr=theta_lr, alpha=alpha, beta=beta,
        target_latency=target_latency, mode=mode, cost_mode=cost_mode, seed=seed,
        run_dir=run_dir, resume=resume, num_samples=samples,
        checkpoint_every=max(1, len(weights) // 2),
    )
    print_result(result, run_dir)
