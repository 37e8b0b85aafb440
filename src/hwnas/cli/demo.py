"""``hwnas demo``: the main job, a short hardware-aware search for this CPU (:mod:`hwnas.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from hwnas.cli import options
from hwnas.cli.common import SearchBars, StageBars, TrainBars, console, load_cifar, progress_bars


def _hooks(bar: Any) -> Any:
    from hwnas.demo import DemoHooks

    stages = StageBars(bar)

    def step(message: str) -> None:
        stages.clear()
        console.print(f"[bold]{message}[/bold]")

    def warning(message: str) -> None:
        console.print(f"[yellow]{message}[/yellow]")

    return DemoHooks(lut_progress=stages, search_progress=SearchBars(bar),
                     train_progress=lambda name: TrainBars(bar), step=step, warning=warning)


def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder (continued if it exists).")]
        = Path("runs/demo"),
    quick: Annotated[bool, typer.Option(
        help="The smoke-test preset (configs/demo-quick.yaml): every step in about a minute."
    )] = False,
    config_file: options.ConfigFile = None,
    data_dir: options.DataDir = None,
    seed: Annotated[Optional[int], typer.Option(
        min=0, help="Seed of the search and the trainings (default: the preset's).")] = None,
) -> None:
    """Measure this CPU, search FBNet for it on CIFAR-10, measure and train the result, report."""
    from hwnas import settings
    from hwnas.demo import DemoSettings, run_demo

    path = config_file or settings.preset("demo-quick" if quick else "demo")
    demo_settings = DemoSettings.load(path, seed)
    console.print(f"hwnas demo ({path}) -> {out} (about {'1' if quick else '5'} minutes on "
                  f"2 cores)")
    with progress_bars() as bar:
        report = run_demo(out, demo_settings, lambda: load_cifar(None, data_dir), _hooks(bar))
    console.print(f"report: {report}")
    typer.echo(report.read_text())
