"""``hwnas arch list|show|flops|export``: look at, count and export architectures.

ARCH is a zoo name (``fbnet_c``), a compact string (``r32:stem_k3_c16_s1:...:head_c1504_n10``)
or a JSON spec file; see :func:`hwnas.arch.load.load_arch`. MFLOPs follow the field's convention
(FBNet, ChamNet, MobileNetV2 papers): millions of multiply-adds, see :mod:`hwnas.cost.flops`.
Everything heavy (torch, the zoo, the counts) is imported inside the commands, so that
importing this module (``hwnas --help``) stays fast.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from hwnas.arch.spec import ArchSpec
from hwnas.cli import options
from hwnas.errors import HwnasError

app = typer.Typer(
    help="Inspect, count and export architectures (zoo name, arch string or JSON file).",
    no_args_is_help=True,
)

#: Largest |torch - ONNX Runtime| output difference that ``export --check`` accepts.
EXPORT_TOLERANCE = 1e-4

ArchArgument = Annotated[
    str,
    typer.Argument(
        metavar="ARCH",
        help="Zoo model name (see 'hwnas arch list'), arch string (contains ':'), or JSON file.",
        show_default=False,
    ),
]
ResolutionOption = Annotated[
    Optional[int],
    typer.Option("--resolution", min=1, help="Input resolution (default: the model's own)."),
]
NumClassesOption = Annotated[
    Optional[int],
    typer.Option("--num-classes", min=1, help="Classifier outputs (default: the model's own)."),
]
WidthOption = Annotated[
    Optional[float],
    typer.Option("--width", help="Width multiplier (zoo models that take one: mobilenet_v2)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead.")]


def _load(arch: str, resolution: int | None, num_classes: int | None,
          width: float | None) -> ArchSpec:
    from hwnas.arch.load import load_arch

    return load_arch(arch, resolution=resolution, num_classes=num_classes, width=width)


def _echo_json(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(data, indent=2))


def model_source(name: str) -> str:
    """The citation of a zoo model: the first parenthesis of its docstring ("Wu et al., ...")."""
    from hwnas.arch.zoo import MODEL_FUNCTIONS

    match = re.search(r"\(([^)]*)\)", MODEL_FUNCTIONS[name].__doc__ or "")
    return " ".join(match.group(1).split()) if match else ""


def zoo_summaries() -> list[dict[str, Any]]:
    """Every zoo model at its default options: name, resolution, MACs, parameters, blocks."""
    from hwnas.arch.zoo import MODEL_NAMES, get_model_spec
    from hwnas.cost.flops import count

    rows = []
    for name in MODEL_NAMES:
        arch = get_model_spec(name)
        counts = count(arch)
        rows.append({
            "name": name, "resolution": arch.resolution, "mflops": counts.macs / 1e6,
            "params": counts.params, "blocks": len(arch.blocks), "source": model_source(name),
        })
    return rows


def _shape(channels: int, size: int) -> str:
    return f"{channels}x{size}x{size}"


def layer_rows(arch: ArchSpec) -> list[dict[str, Any]]:
    """One row per layer of the shape walk: name, its part of the arch string, shapes, counts."""
    from hwnas.arch.build import walk
    from hwnas.cost.flops import count

    per_layer = dict(count(arch).per_layer)
    # The arch string has one part per layer after the input part, in walk order.
    parts = arch.to_string().split(":")[1:]
    rows = []
    for layer, part in zip(walk(arch), parts, strict=True):
        counts = per_layer[layer.name]
        out_shape = (
            str(layer.out_channels) if layer.name == "head"
            else _shape(layer.out_channels, layer.out_size)
        )
        rows.append({
            "name": layer.name, "block": part,
            "in_shape": _shape(layer.in_channels, layer.in_size), "out_shape": out_shape,
            "macs": counts.macs, "params": counts.params,
        })
    return rows


def _summary(arch: ArchSpec) -> dict[str, Any]:
    from hwnas.cost.flops import count

    counts = count(arch)
    return {
        "string": arch.to_string(),
        "mflops": counts.macs / 1e6,
        "macs": counts.macs,
        "params": counts.params,
        "mparams": counts.params / 1e6,
        "resolution": arch.resolution,
        "num_classes": arch.num_classes,
    }


@app.command("list")
def list_models(json_output: JsonOption = False) -> None:
    """List the model zoo with resolution, MFLOPs (multiply-adds) and parameters."""
    rows = zoo_summaries()
    if json_output:
        _echo_json({"models": rows})
        return
    table = Table(title="model zoo (MFLOPs = millions of multiply-adds)")
    for column in ("name", "resolution", "MFLOPs", "M params", "source"):
        table.add_column(column, justify="right" if column in ("resolution", "MFLOPs",
                                                                "M params") else "left")
    for row in rows:
        table.add_row(row["name"], str(row["resolution"]), f"{row['mflops']:.1f}",
                      f"{row['params'] / 1e6:.3f}", row["source"])
    Console().print(table)


@app.command("show")
def show(
    arch: ArchArgument,
    resolution: ResolutionOption = None,
    num_classes: NumClassesOption = None,
    width: WidthOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show an architecture layer by layer: block, input/output shape, MACs and parameters."""
    spec = _load(arch, resolution, num_classes, width)
    rows = layer_rows(spec)
    summary = _summary(spec)
    if json_output:
        _echo_json({"arch": spec.to_dict(), **summary, "layers": rows})
        return
    table = Table(title=f"{arch if ':' not in arch else 'architecture'} "
                        f"({spec.resolution} px, {spec.num_classes} classes)")
    # A light box and narrow padding fit an 80-column terminal without truncating any cell.
    table.box, table.padding, table.show_edge = box.SIMPLE_HEAD, (0, 1, 0, 0), False
    for column in ("layer", "block", "input", "output", "M MACs", "K params"):
        table.add_column(column, justify="right" if column[1] == " " else "left", no_wrap=True)
    for row in rows:
        table.add_row(row["name"], row["block"], row["in_shape"], row["out_shape"],
                      f"{row['macs'] / 1e6:.2f}", f"{row['params'] / 1e3:.1f}")
    table.add_section()
    table.add_row("total", "", "", "", f"{summary['mflops']:.2f}", f"{summary['params'] / 1e3:.1f}")
    console = Console()
    console.print(table)
    # soft_wrap: the string must stay copy-pasteable, without line breaks inserted by rich.
    console.print(summary["string"], soft_wrap=True, markup=False, highlight=False)


@app.command("flops")
def flops(
    arch: ArchArgument,
    resolution: ResolutionOption = None,
    num_classes: NumClassesOption = None,
    width: WidthOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the total MFLOPs (millions of multiply-adds) and parameters of an architecture."""
    spec = _load(arch, resolution, num_classes, width)
    summary = _summary(spec)
    if json_output:
        _echo_json(summary)
        return
    typer.echo(f"{summary['mflops']:.2f} MFLOPs (multiply-adds), "
               f"{summary['params']:,} parameters ({summary['mparams']:.3f} M)")


@app.command("export")
def export(
    arch: ArchArgument,
    out: Annotated[Path, typer.Option("--out", help="ONNX file to write.", show_default=False,
                                      callback=options.output_path)],
    batch: Annotated[int, typer.Option("--batch", min=1, help="Example batch size.")] = 1,
    opset: Annotated[int, typer.Option(
        "--opset", min=7, max=23, help="ONNX opset version (7-23: torch 2.13's exporter range).",
    )] = 17,
    check: Annotated[bool, typer.Option(
        "--check/--no-check", help="Run the file in ONNX Runtime and compare it with torch.",
    )] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random initialisation.")] = 0,
    resolution: ResolutionOption = None,
    num_classes: NumClassesOption = None,
    width: WidthOption = None,
) -> None:
    """Export a randomly initialised network (eval mode) to ONNX with a free batch dimension.

    --check (default): run it in ONNX Runtime; fail with status 1 if it differs by over 1e-4.
    """
    spec = _load(arch, resolution, num_classes, width)
    network = build_network(spec, seed=seed)
    from hwnas.arch.export import export_onnx, max_abs_difference

    input_shape = (batch, spec.in_channels, spec.resolution, spec.resolution)
    try:
        path = export_onnx(network, input_shape, out, opset=opset, dynamic_batch=True)
    except OSError as error:
        # The atomic write names its temporary file; the user needs the path they gave.
        raise HwnasError(f"cannot write {out}: {error.strerror or error}") from None
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, opset {opset}, "
               f"input {'x'.join(map(str, input_shape))} with a free batch dimension)")
    if not check:
        return
    difference = max_abs_difference(network, path, batch=batch, seed=seed)
    typer.echo(f"max |torch - onnxruntime| = {difference:.3g} (batch {batch}; torch logits up "
               f"to {_largest_output(network, batch, seed):.3g} in size)")
    if not difference <= EXPORT_TOLERANCE:  # also fails on NaN
        typer.echo(f"error: ONNX Runtime output differs from torch by {difference:.3g} "
                   f"> {EXPORT_TOLERANCE:g}", err=True)
        raise typer.Exit(1)


def _largest_output(network, batch: int, seed: int) -> float:
    """max |logit| of the network on a seeded random batch: the scale the difference is
    measured against."""
    import torch

    arch = network.arch
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch, arch.in_channels, arch.resolution, arch.resolution,
                         generator=generator)
    with torch.no_grad():
        return float(network(inputs).abs().max())


def build_network(arch: ArchSpec, *, seed: int, calibration_batch: int | None = None):
    """``build_model(arch)`` randomly initialised from ``seed``, BN statistics calibrated, in eval
    mode.

    With the builder's init and fresh BN statistics (mean 0, variance 1) the activations of a
    22-block FBNet shrink by about 10x every few blocks and the logits end near 1e-8, so an
    absolute ONNX-vs-torch tolerance would be met by any graph. Setting every BN's running
    statistics from one random batch (cumulative average, ``momentum=None``) keeps activations at
    unit scale, which makes the 1e-4 comparison mean something. The default batch gives the
    smallest feature map at least 64 values per channel: fewer (e.g. 2 images of 2x2) give
    near-zero variances whose inverse square roots inflate the logits to ~30 and float32
    rounding differences with them. The global torch RNG is forked, so the caller's RNG state
    is untouched.
    """
    import torch
    from torch import nn

    from hwnas.arch.build import build_model, walk

    if calibration_batch is None:
        smallest = min(layer.out_size for layer in walk(arch)[:-1])  # the head pools to 1x1
        calibration_batch = max(2, math.ceil(64 / smallest**2))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = build_model(arch)
        inputs = torch.randn(
            calibration_batch, arch.in_channels, arch.resolution, arch.resolution
        )
    norms = [module for module in network.modules() if isinstance(module, nn.BatchNorm2d)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    network.train()
    with torch.no_grad():
        network(inputs)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    return network.eval()
