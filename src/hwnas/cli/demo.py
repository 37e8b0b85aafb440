"""``hwnas demo``: the main job, a short hardware-aware search for this CPU (:mod:`hwnas.demo`)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)

QUICK = dict(subset_per_class=40, test_per_class=10, search_epochs=2, warmup_epochs=1,
             train_epochs=1, quick_timing=True)


@contextmanager
def _bars() -> Iterator[Any]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        yield bar


def _hooks(bar: Progress) -> Any:
    from hwnas.cli.dnas import DnasProgressBar
    from hwnas.cli.lut import STAGE_TITLES
    from hwnas.cli.train import RichTrainProgress
    from hwnas.demo import DemoHooks

    tasks: dict[str, Any] = {}

    def lut_progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(STAGE_TITLES.get(stage, stage), total=total)
        bar.update(tasks[stage], completed=done, total=total)

    def step(message: str) -> None:
        for task in list(tasks.values()):
            bar.remove_task(task)
        tasks.clear()
        console.print(f"[bold]{message}[/bold]")

    return DemoHooks(lut_progress=lut_progress, search_progress=DnasProgressBar(bar),
                     train_progress=lambda name: RichTrainProgress(bar), step=step)


def demo(
    out: Annotated[Path, typer.Option("--out", help="Run directory (continued if it exists).")]
        = Path("runs/demo"),
    quick: Annotated[bool, typer.Option(
        help="Tiny sizes and timings: a smoke run of every step in about a minute.")] = False,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir")] = None,
    seed: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """Measure this CPU, search FBNet for it on CIFAR-10, measure and train the result, report."""
    from hwnas.cli.train import _load_data
    from hwnas.demo import DemoSettings, run_demo

    settings = DemoSettings(out=out, data_dir=data_dir, seed=seed, **(QUICK if quick else {}))
    console.print(f"hwnas demo -> {out} (about {'1' if quick else '5'} minutes on 2 cores)")
    with _bars() as bar:
        report = run_demo(settings, lambda: _load_data(None, data_dir), _hooks(bar))
    console.print(f"report: {report}")
    typer.echo(report.read_text())
