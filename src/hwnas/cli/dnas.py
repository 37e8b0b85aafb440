"""``hwnas search dnas``: the FBNet differentiable search on CIFAR-10 for one cost model.

Translates options into :func:`hwnas.dnas.run_dnas` and draws a progress bar; the search itself,
its run directory and resume live in :mod:`hwnas.dnas`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwnas.cli import options

console = Console(stderr=True)


class DnasProgressBar:
    """One rich bar per (epoch, phase); ``__call__`` receives :class:`SearchProgress`. Without
    ``steps_per_phase`` the bars have no total (the caller may not know the batch counts)."""

    def __init__(self, bar: Progress, steps_per_phase: dict[str, int] | None = None) -> None:
        self.bar = bar
        self.steps_per_phase = steps_per_phase
        self.task: Any = None
        self.current: tuple[int, str] | None = None

    def __call__(self, progress: Any) -> None:
        key = (progress.epoch, progress.phase)
        if key != self.current:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.current = key
            self.task = self.bar.add_task(
                f"epoch {progress.epoch + 1}/{progress.epochs} {progress.phase}",
                total=(self.steps_per_phase or {}).get(progress.phase), loss=float("nan"),
            )
        self.bar.update(self.task, completed=progress.step, loss=progress.loss)


def run_search_with_progress(space: Any, cost_model: Any, weights: Any, theta: Any,
                             **options: Any) -> Any:
    """:func:`run_dnas` with a rich progress bar on stderr."""
    from hwnas.dnas import run_dnas

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        progress = DnasProgressBar(bar, {"weights": len(weights), "theta": len(theta)})
        return run_dnas(space, cost_model, weights, theta, progress=progress, **options)


def print_result(result: Any, run_dir: Path) -> None:
    table = Table(title=f"derived architectures ({result.cost_name}, {result.cost_unit})")
    for column in ("rank", "predicted", "log P", "drawn", "architecture"):
        table.add_column(column)
    rows = [("argmax", result.argmax)]
    if result.within_target is not None:
        rows.append(("within target", result.within_target))
    rows += [(str(i + 1), d) for i, d in enumerate(result.samples)]
    for rank, derived in rows:
        table.add_row(rank, f"{derived.cost:.3f}", f"{derived.log_probability:.2f}",
                      str(derived.count), derived.arch)
    console.print(table)
    console.print(f"expected cost under P_theta: {result.expected_cost:.3f} {result.cost_unit}"
                  f" -> {run_dir}")


def dnas_command(
    cost: Annotated[str, typer.Option(
        "--cost", help="LUT file (hwnas lut build), a device table (raspi4, pixel3, eyeriss, "
        "fpga) or flops.")],
    space: Annotated[str, typer.Option("--space", help="Layer-wise space.")] = "fbnet-cifar",
    epochs: options.Epochs = 8,
    warmup_epochs: options.WarmupEpochs = 2,
    subset_per_class: options.SubsetPerClass = 250,
    batch_size: options.BatchSize = 64,
    mode: Annotated[str, typer.Option(help="sampled (one path per step) or soft (all).")] =
        "sampled",
    weight_lr: options.WeightLr = 0.025,
    theta_lr: options.ThetaLr = 0.01,
    alpha: options.Alpha = 0.2,
    beta: options.Beta = 0.6,
    target_latency: options.TargetLatency = None,
    target_form: options.TargetForm = "budget",
    fix_transitions: Annotated[Optional[str], typer.Option(
        "--fix-transitions", help="Give the width/stride-changing layers this candidate and "
        "search the others (a random-path supernet over them barely trains in CPU minutes); "
        "'none' searches every layer.")] = "k3_e6",
    warm_start: options.WarmStart = None,
    theta_estimator: Annotated[str, typer.Option(
        "--theta-estimator", help="gumbel (FBNet's straight-through Gumbel gradient) or "
        "reinforce (score function over --paths-per-batch paths of each theta batch).")] =
        "gumbel",
    paths_per_batch: Annotated[int, typer.Option(
        min=2, help="Paths compared on each theta batch by --theta-estimator reinforce.")] = 4,
    weight_sharing: Annotated[str, typer.Option(
        "--weight-sharing", help="independent (FBNet: every candidate has its own weights) or "
        "nested (the candidates of a layer are slices of one largest block).")] =
        "independent",
    residual_scale: Annotated[float, typer.Option(
        "--residual-scale", min=0.0, help="Initial last-BN scale of the searched residual "
        "blocks: 0 starts each as the identity (zero-gamma).")] = 0.0,
    samples: options.Samples = 10,
    seed: options.Seed = 0,
    threads: options.Threads = 1,
    out: options.RunDirectory = None,
    resume: options.Resume = False,
    data_dir: options.DataDir = None,
    cifar: options.Cifar = None,
) -> None:
    """FBNet DNAS on CIFAR-10: CE * alpha * log(1 + LAT)^beta with LAT from --cost.

    By default the six width/stride-changing layers are fixed to k3_e6 (--fix-transitions).
    """
    import torch

    from hwnas.cli.search import resolve_cost
    from hwnas.cli.train import _load_data
    from hwnas.dnas.data import search_batches
    from hwnas.errors import HwnasError
    from hwnas.spaces import SPACE_NAMES, get_space

    if space not in SPACE_NAMES:
        raise HwnasError(f"unknown --space {space!r} for dnas (layer-wise spaces: "
                         f"{', '.join(SPACE_NAMES)})")
    torch.set_num_threads(threads)
    search_space = get_space(space)
    cost_model = resolve_cost(cost, search_space, None, data_dir)
    data = _load_data(cifar, data_dir)
    weights, theta = search_batches(data, per_class=subset_per_class, batch_size=batch_size,
                                    seed=seed)
    fixed_layers = ({} if fix_transitions in (None, "none") else
                    {layer: fix_transitions for layer in search_space.transition_layers})
    run_dir = out or Path("runs") / f"dnas-{space}-{Path(cost).stem}-seed{seed}"
    console.print(f"searching {space} for {cost_model.name} ({cost_model.unit}): "
                  f"{weights.num_images} weight / {theta.num_images} theta images -> {run_dir}")
    result = run_search_with_progress(
        search_space, cost_model, weights, theta, epochs=epochs, warmup_epochs=warmup_epochs,
        weight_lr=weight_lr, theta_lr=theta_lr, alpha=alpha, beta=beta,
        target_latency=target_latency, target_form=target_form, fixed_layers=fixed_layers,
        warm_start=warm_start, theta_estimator=theta_estimator,
        paths_per_batch=paths_per_batch, weight_sharing=weight_sharing,
        residual_scale=residual_scale, mode=mode, seed=seed, run_dir=run_dir, resume=resume,
        num_samples=samples, checkpoint_every=max(1, len(weights) // 2),
    )
    print_result(result, run_dir)
