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

from hwnas.cli import options
from hwnas.cli.common import StageBars
from hwnas.cost.lut_config import LutBuildConfig, LutValidateConfig
from hwnas.runs import probe_run

app = typer.Typer(help="Measured latency lookup tables (LUTs): build, predict, validate.",
                  no_args_is_help=True)

@contextmanager
def rich_progress() -> Iterator[Any]:
    """A rich progress bar; yields an ``on_progress(stage, done, total)`` callback."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), transient=False) as progress:
        yield StageBars(progress)


def warn(message: str) -> None:
    """A measurement-health warning: one line on stderr."""
    typer.echo(message, err=True)


@app.command("build")
@options.config_command(LutBuildConfig, "lut_build")
def build(
    config: LutBuildConfig,
    out: Optional[Path] = typer.Option(
        None, "--out", help="LUT file (JSON); default lut-<space>-<engine>-<threads>t.json",
        callback=options.output_path),
    recalibrate: bool = typer.Option(False, "--recalibrate",
                                     help="refit the correction of a finished table"),
    throttle_s: float = typer.Option(0.0, "--throttle-s", hidden=True,
                                     help="sleep after each key (tests of interrupted builds)"),
) -> None:
    """Measure every operator key of --space on --engine; resumes an interrupted build of --out."""
    from hwnas.cost.lutbuild import build_lut, engine_of

    label = engine_of(config).label
    path = out or Path(f"lut-{config.space}-{label}.json")
    with rich_progress() as on_progress:
        table = build_lut(config, path, recalibrate=recalibrate, on_progress=on_progress,
                          on_warning=warn, throttle_s=throttle_s)
    fit = table.calibration
    spreads = [entry.spread_pct for entry in table.entries.values()]
    typer.echo(f"wrote {path}: {len(table.entries)} keys, {label}, {config.processes} processes "
               f"x {config.sessions} sessions; median spread of a key's sessions "
               f"{sorted(spreads)[len(spreads) // 2]:.1f} %")
    speed = table.build.speed
    if speed:
        typer.echo(f"machine speed over the build: {speed['blocks_off']} of {speed['blocks']} "
                   f"blocks more than 10 % off its median (fastest "
                   f"{speed['fastest_block_pct']:+.0f} %, slowest "
                   f"{speed['slowest_block_pct']:+.0f} %)")
    if fit:
        typer.echo(f"prediction = {fit.scale:.4f} * sum + {fit.offset_ms:.4f} ms "
                   f"({fit.method}: {fit.reason})")
    if table.correction:
        record = table.correction
        typer.echo(f"per-key correction from {record.networks} networks (penalty "
                   f"{record.penalty:g}, {record.keys_corrected} keys): leave-one-out MAPE "
                   f"{record.loo_mape_pct:.2f} % (without it {record.uncorrected_mape_pct:.2f} %)"
                   + ("" if record.applied else "; not applied: it predicts no better"))


@app.command("predict")
def predict(
    arch: str = typer.Argument(..., help="compact arch string, JSON file or zoo name"),
    lut: Path = typer.Option(..., "--lut", help="LUT file from `hwnas lut build`"),
    layers: bool = typer.Option(False, "--layers", help="also print each layer's entry"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON object"),
) -> None:
    """Predicted end-to-end latency of ARCH: scale * (sum of its layers' LUT prices) + offset."""
    from hwnas.arch.build import walk
    from hwnas.arch.load import load_arch
    from hwnas.cost.lut import LatencyTable

    table = LatencyTable.load(lut)
    spec = load_arch(arch)
    latencies = table.layer_latencies(spec)
    result = {"predicted_ms": table.cost(spec), "lut_sum_ms": float(sum(latencies)),
              "uncorrected_sum_ms": table.raw_sum(spec),
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
@options.config_command(LutValidateConfig, "lut_validate")
def validate(
    config: LutValidateConfig,
    lut: Path = typer.Option(..., "--lut", help="LUT file from `hwnas lut build`"),
    out: Path = typer.Option(Path("lut-validation"), "--out", help="run folder (JSON and PNG)",
                             callback=options.output_path),
    resume: options.Resume = False,
) -> None:
    """Measure N random networks with the LUT's engine; report MAPE, +-5/10 %, Spearman, Kendall."""
    from hwnas.cost.lut import LatencyTable
    from hwnas.cost.validate import validate_lut

    probe_run(out, command="lut_validate", resume=resume)
    table = LatencyTable.load(lut)
    with rich_progress() as on_progress:
        result = validate_lut(table, config, out_dir=out, resume=resume, on_progress=on_progress,
                              on_warning=warn)
    typer.echo(f"{result['label']}: n={result['n']}  " + fidelity_line(result))
    if result["ceiling"] is not None:
        typer.echo("noise ceiling (group 1 vs group 2 of the measurements): "
                   + fidelity_line(result["ceiling"]))
    if result["drift_pct"] is not None:
        typer.echo(f"reference networks: {result['drift_pct']:+.1f} % against the build; at "
                   f"the machine's current speed: " + fidelity_line(result["at_current_speed"]))
    typer.echo(f"wrote {out / 'result.json'} and {result['plot']}")


def fidelity_line(metrics: dict[str, Any]) -> str:
    """MAPE, within 5/10 %, Spearman and Kendall on one line."""
    ranks = "  ".join(f"{name.capitalize()} " + ("n/a" if metrics[name] is None
                                                 else f"{metrics[name]:.3f}")
                      for name in ("spearman", "kendall"))
    return (f"MAPE {metrics['mape']:.2f} %  within 5 % {metrics['within_5pct']:.0f} %  "
            f"within 10 % {metrics['within_10pct']:.0f} %  {ranks}")
