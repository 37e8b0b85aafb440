"""``hwnas demo``: the main job, a short hardware-aware search for this CPU
(:mod:`hwnas.nb201_demo`; ``--job fbnet``: :mod:`hwnas.demo`)."""

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


def _nb201() -> tuple[Any, Any]:
    from hwnas.nb201_demo import NB201DemoSettings, run_nb201_demo

    return NB201DemoSettings.load, run_nb201_demo


def _fbnet() -> tuple[Any, Any]:
    from hwnas.demo import DemoSettings, run_demo

    return DemoSettings.load, run_demo


#: each job: its preset (and run folder) name, the minutes of a full run as measured on the
#: 2-core development machine (benchmarks/RESULTS.md), its settings loader and runner
JOBS = {"nb201": ("demo", 3, _nb201), "fbnet": ("demo-fbnet", 9, _fbnet)}


def demo(
    job: Annotated[str, typer.Option(
        "--job", help="nb201: search NAS-Bench-201's cells for this CPU, judged by their true "
        "accuracies (configs/demo.yaml); fbnet: FBNet DNAS on CIFAR-10 with a short training "
        "(configs/demo-fbnet.yaml).")] = "nb201",
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Output folder, continued if it exists (default runs/demo, "
        "runs/demo-fbnet).", callback=options.output_path)] = None,
    quick: Annotated[bool, typer.Option(
        help="The job's smoke-test preset (configs/demo-quick.yaml, demo-fbnet-quick.yaml): "
        "every step in about a minute.")] = False,
    config_file: options.ConfigFile = None,
    data_dir: options.DataDir = None,
    seed: Annotated[Optional[int], typer.Option(
        min=0, help="Seed of the searches (and the fbnet job's trainings; default: the "
        "preset's).")] = None,
) -> None:
    """Measure this CPU, search networks for it, time them and report (``--job``)."""
    from hwnas import settings
    from hwnas.errors import HwnasError

    if job not in JOBS:
        raise HwnasError(f"unknown --job {job!r} (known: {', '.join(JOBS)})")
    name, full_minutes, parts = JOBS[job]
    path = config_file or settings.preset(name + ("-quick" if quick else ""))
    out = out or Path("runs") / name
    load, run = parts()
    loaded = load(path, seed)
    minutes = 1 if quick else full_minutes
    console.print(f"hwnas demo --job {job} ({path}) -> {out} (about {minutes} minutes on 2 cores)")
    with progress_bars() as bar:
        report = run(out, loaded, lambda: load_cifar(None, data_dir), _hooks(bar))
    console.print(f"report: {report}")
    typer.echo(report.read_text())
