"""``hwnas lut build | predict | validate``: measured latency lookup tables.

Library code lives in :mod:`hwnas.cost.lut`, :mod:`hwnas.cost.lutbuild` and
:mod:`hwnas.cost.validate`; torch and ONNX Runtime are imported inside the commands so that
``hwnas --help`` starts fast.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer

app = typer.Typer(help="Measured latency lookup tables (LUTs): build, predict, validate.",
                  no_args_is_help=True)

STAGE_TITLES = {"keys": "measuring operator keys", "export": "building networks",
                "timing": "timing networks (interleaved rounds)"}


@contextmanager
def rich_progress() -> Iterator[Any]:
    """A rich progress bar; yields an ``on_progress(stage, done, total)`` callback."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    tasks: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), transient=False) as progress:

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(STAGE_TITLES.get(stage, stage), total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield on_progress


def _timing(warmup: int, repeats: int, rounds: int) -> Any:
    from hwnas.cost.engines import TimingSettings

    return TimingSettings(warmup=warmup, repeats=repeats, rounds=rounds)


@app.command("build")
def build(
    space: str = typer.Option(..., "--space", help="fbnet-cifar, fbnet-cifar100 or fbnet-imagenet"),
    engine: str = typer.Option("ort", "--engine", help="ort (ONNX Runtime) or torch (eager)"),
    threads: int = typer.Option(1, "--threads", help="intra-op threads, fixed for all timings"),
    layout: Optional[str] = typer.Option(
        None, "--layout", help="channels_last or contiguous (torch only; default channels_last)"),
    out: Optional[Path] = typer.Option(
        None, "--out", help="LUT file (JSON); default lut-<space>-<engine>-<threads>t.json"),
    warmup: int = typer.Option(10, "--warmup", help="untimed calls before each timed run"),
    repeats: int = typer.Option(50, "--repeats", help="timed calls per key and round"),
    rounds: int = typer.Option(3, "--rounds", help="interleaved rounds; latency = median"),
    calibration: int = typer.Option(
        12, "--calibration", help="networks timed end to end to fit scale/offset (0: none)"),
    calibration_seed: int = typer.Option(1, "--calibration-seed"),
    network_repeats: int = typer.Option(40, "--network-repeats",
                                        help="timed calls per calibration network and round"),
    recalibrate: bool = typer.Option(False, "--recalibrate",
                                     help="refit the correction of a finished table"),
    throttle_s: float = typer.Option(0.0, "--throttle-s", hidden=True,
                                     help="sleep after each key (tests of interrupted builds)"),
) -> None:
    """Measure every operator key of SPACE on ENGINE; resumes an interrupted build of --out."""
    from hwnas.cost.engines import make_engine
    from hwnas.cost.lutbuild import build_lut

    chosen = make_engine(engine, threads=threads, layout=layout)
    path = out or Path(f"lut-{space}-{chosen.label}.json")
    with rich_progress() as on_progress:
        table = build_lut(space, chosen, path, timing=_timing(warmup, repeats, rounds),
                          calibration_networks=calibration, calibration_seed=calibration_seed,
                          network_timing=_timing(max(1, warmup // 2), network_repeats, rounds),
                          recalibrate=recalibrate, on_progress=on_progress,
                          throttle_s=throttle_s)
    fit = table.calibration
    typer.echo(f"wrote {path}: {len(table.entries)} keys, {chosen.label}")
    if fit:
        typer.echo(f"prediction = {fit.scale:.4f} * sum + {fit.offset_ms:.4f} ms "
                   f"({fit.method}: {fit.reason})")


@app.command("predict")
def predict(
    arch: str = typer.Argument(..., help="compact arch string, JSON file or zoo name"),
    lut: Path = typer.Option(..., "--lut", help="LUT file from `hwnas lut build`"),
    layers: bool = typer.Option(False, "--layers", help="also print each layer's entry"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON object"),
) -> None:
    """Predicted end-to-end latency of ARCH: scale * (sum of LUT entries) + offset."""
    from hwnas.arch.build import walk
    from hwnas.arch.load import load_arch
    from hwnas.cost.lut import LatencyTable

    table = LatencyTable.load(lut)
    spec = load_arch(arch)
    latencies = table.layer_latencies(spec)
    result = {"predicted_ms": table.cost(spec), "lut_sum_ms": float(sum(latencies)),
              "scale": table.scale, "offset_ms": table.offset_ms,
              "method": table.calibration.method if table.calibration else "raw_sum",
              "lut": str(lut), "engine": table.engine}
    names = [layer.name for layer in walk(spec)]
    if as_json:
        if layers:
            result["layers"] = dict(zip(names, latencies))
        typer.echo(json.dumps(result, indent=2))
        return
    if layers:
        for name, value in zip(names, latencies):
            typer.echo(f"{name:>10}  {value:8.4f} ms")
    typer.echo(f"predicted {result['predicted_ms']:.4f} ms = {table.scale:.4f} * "
               f"{result['lut_sum_ms']:.4f} + {table.offset_ms:.4f} ({result['method']}, "
               f"{table.describe()})")


@app.command("validate")
def validate(
    lut: Path = typer.Option(..., "--lut", help="LUT file from `hwnas lut build`"),
    n: int = typer.Option(100, "--n", help="random architectures to measure end to end"),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(Path("lut-validation"), "--out", help="folder for JSON and PNG"),
    warmup: int = typer.Option(5, "--warmup"),
    repeats: int = typer.Option(40, "--repeats", help="timed calls per network and round"),
    rounds: int = typer.Option(3, "--rounds", help="interleaved rounds; latency = median"),
) -> None:
    """Measure N random networks with the LUT's engine; report MAPE, +-5/10 %, Spearman, Kendall."""
    from hwnas.cost.lut import LatencyTable
    from hwnas.cost.validate import validate_lut

    table = LatencyTable.load(lut)
    with rich_progress() as on_progress:
        result = validate_lut(table, n=n, seed=seed, out_dir=out,
                              timing=_timing(warmup, repeats, rounds), on_progress=on_progress)
    ranks = "  ".join(f"{name.capitalize()} " + ("n/a" if result[name] is None
                                                 else f"{result[name]:.3f}")
                      for name in ("spearman", "kendall"))
    typer.echo(f"{result['label']}: n={result['n']}  MAPE {result['mape']:.2f} %  "
               f"within 5 % {result['within_5pct']:.0f} %  within 10 % "
               f"{result['within_10pct']:.0f} %  {ranks}")
    typer.echo(f"wrote {out / (result['label'] + '-validation.json')} and {result['plot']}")
