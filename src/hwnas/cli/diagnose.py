"""``hwnas search diagnose RUN``: does a finished FBNet search's supernet tell architectures apart?

Runs :func:`hwnas.dnas.diagnostics.signal_report` on the run directory's checkpoint: random paths
on fixed CIFAR-10 test images, the additive per-candidate fit, the all-skip / all-largest paths
and the run's derived networks; prints a summary and writes ``RUN/supernet_signal.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwnas.cli import options
from hwnas.errors import HwnasError

console = Console(stderr=True)


def diagnose_command(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of `hwnas search dnas`.")],
    paths: Annotated[int, typer.Option(min=20, help="Random paths to evaluate.")] = 200,
    images: Annotated[int, typer.Option(
        min=10, help="Test images per random path (rounded down to whole classes).")] = 250,
    named_images: Annotated[int, typer.Option(
        min=10, help="Test images for the all-skip/all-largest and derived networks.")] = 1000,
    seed: options.Seed = 0,
    threads: options.Threads = 1,
    data_dir: options.DataDir = None,
    cifar: options.Cifar = None,
) -> None:
    """Measure how much the supernet's loss depends on the architecture (FBNet runs)."""
    import numpy as np
    import torch

    from hwnas.cli.common import load_cifar
    from hwnas.dnas.checkpoint import load_supernet_weights
    from hwnas.dnas.diagnostics import fixed_test_images, random_paths, signal_report
    from hwnas.dnas.supernet import SuperNet
    from hwnas.io import atomic_write_json

    torch.set_num_threads(threads)
    space, fixed, weight_sharing = _run_space(run_dir)
    supernet = SuperNet(space, weight_sharing).to(memory_format=torch.channels_last)
    load_supernet_weights(run_dir / "checkpoint.pt", supernet)
    supernet.fix_decisions(fixed)
    data = load_cifar(cifar, data_dir)
    random = random_paths(space.num_layers, len(space.candidates), fixed, paths,
                          np.random.default_rng(seed))
    test, named_test = (fixed_test_images(data, images, seed),
                        fixed_test_images(data, named_images, seed + 1))
    with Progress(TextColumn("random paths"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("paths", total=paths)
        report = signal_report(supernet, random, test, _named_paths(run_dir, space, fixed),
                               named_test, progress=lambda done: bar.update(task, completed=done))
    report.update(run=str(run_dir), images=len(test[1]), named_images=len(named_test[1]),
                  seed=seed)
    atomic_write_json(run_dir / "supernet_signal.json", report)
    _print_report(report, run_dir)


def _run_space(run_dir: Path) -> tuple[Any, dict[int, int], str]:
    """The run's layer-wise space, fixed layers and weight sharing; raises HwnasError for
    anything else."""
    import dataclasses

    from hwnas import settings
    from hwnas.cost.flops import FlopsCost
    from hwnas.dnas.config import DnasConfig
    from hwnas.dnas.layerwise import LayerwiseProblem
    from hwnas.io import read_json
    from hwnas.runs import normalised
    from hwnas.spaces import get_space, space_names

    config_path, checkpoint = run_dir / "config.json", run_dir / "checkpoint.pt"
    if not config_path.exists() or not checkpoint.exists():
        raise HwnasError(f"{run_dir} is not a DNAS run folder (needs config.json and "
                         "checkpoint.pt)")
    saved = read_json(config_path, "DNAS run config")
    stored_space = saved.get("space") if isinstance(saved, dict) else None
    name = stored_space.get("name") if isinstance(stored_space, dict) else None
    if name not in space_names("dnas") or not isinstance(saved.get("search"), dict):
        raise HwnasError(f"{run_dir} searched space {name!r}; diagnose reads FBNet runs of "
                         f"{', '.join(space_names('dnas'))}")
    space = get_space(name, "dnas")
    if normalised(dataclasses.asdict(space)) != stored_space:
        raise HwnasError(f"{run_dir}: its space {name!r} differs from hwnas's {name!r}")
    if space.head.num_classes != 10:
        raise HwnasError(f"diagnose evaluates on CIFAR-10; space {name!r} has "
                         f"{space.head.num_classes} classes")
    config = settings.from_saved(DnasConfig, saved["search"])
    return space, LayerwiseProblem(space, FlopsCost(), config).fixed, config.weight_sharing


def _named_paths(run_dir: Path, space: Any, fixed: dict[int, int]) -> dict[str, tuple[int, ...]]:
    """The all-skip and all-largest paths (fixed layers kept) and the run's derived networks."""
    import numpy as np

    from hwnas.cost.flops import FlopsCost
    from hwnas.dnas.diagnostics import uniform_path
    from hwnas.dnas.result import SearchResult

    flops = FlopsCost().layer_cost_matrix(space).matrix
    largest = int(np.argmax(flops.sum(axis=0)))
    named = {f"all-{space.candidates[largest]}": uniform_path(space.num_layers, largest, fixed)}
    if "skip" in space.candidates:
        named["all-skip"] = uniform_path(space.num_layers, space.candidates.index("skip"), fixed)
    if (run_dir / "result.json").exists():
        result = SearchResult.load(run_dir / "result.json")
        named["argmax"] = tuple(result.argmax.choices)
        if result.within_target is not None:
            named["within target"] = tuple(result.within_target.choices)
    return named


def _print_report(report: dict[str, Any], run_dir: Path) -> None:
    fit, cross_entropy = report["additive_fit"], report["path_cross_entropy"]
    table = Table(title=f"supernet signal: {report['paths']} random paths on "
                  f"{report['images']} test images")
    table.add_column("measure")
    table.add_column("value")
    table.add_row("CE of random paths: mean, sd",
                  f"{cross_entropy['mean']:.4f}, {cross_entropy['sd']:.4f} "
                  f"({100 * cross_entropy['sd'] / cross_entropy['mean']:.2f} %)")
    table.add_row("additive fit: cross-validated R^2, split-half r",
                  f"{fit['cross_validated_r2']:.3f}, {fit['split_half_correlation']:.3f}")
    preference = report["effect_vs_mflops_spearman"]
    if preference:
        table.add_row("Spearman rho, effect vs MFLOPs (-1: compute helps)",
                      f"{preference['mean']:+.2f}")
    for name in report["supernet_accuracy"]:
        table.add_row(f"{name}: accuracy, CE",
                      f"{100 * report['supernet_accuracy'][name]:.1f} %, "
                      f"{report['supernet_cross_entropy'][name]:.4f}")
    console.print(table)
    console.print(f"-> {run_dir / 'supernet_signal.json'}")
