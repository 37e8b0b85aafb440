"""``hwnas search dnas`` (FBNet) and ``hwnas search dmasking`` (FBNetV2) on CIFAR-10.

    hwnas search dnas --cost lut.json --target-latency 1.8 --out runs/dnas
    hwnas lut build --space dmasking-cifar --calibration 0 --out lut-dm.json
    hwnas search dmasking --cost lut-dm.json --epochs 8 --out runs/dmasking

Each translates its options into its config (:class:`hwnas.dnas.DnasConfig`,
:class:`hwnas.dnas.DMaskingConfig`; ``--config FILE`` for a preset such as
``configs/demo.yaml``) and draws progress bars; the searches, their run folders and resume live
in :mod:`hwnas.dnas`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable

import typer

from hwnas.cli import options
from hwnas.cli.common import (
    COST_HELP, SearchBars, console, load_cifar, print_search_result, progress_bars, resolve_cost,
)
from hwnas.dnas.config import DMaskingConfig, DnasConfig, SearchSettings
from hwnas.runs import probe_run


def search_with_progress(run: Callable[..., Any], space: Any, cost_model: Any,
                         config: SearchSettings, data: Any, out: Path, resume: bool) -> Any:
    """``run(space, cost_model, weights, theta, config, ...)`` on ``data``'s search batches
    with a progress bar per epoch and phase, then the derived architectures printed."""
    from hwnas.dnas.data import search_batches

    weights, theta = search_batches(data, config)
    console.print(f"searching {space.name} for {cost_model.name} ({cost_model.unit}): "
                  f"{weights.num_images} weight / {theta.num_images} theta images -> {out}")
    with progress_bars("loss") as bar:
        progress = SearchBars(bar, {"weights": len(weights), "theta": len(theta)})
        result = run(space, cost_model, weights, theta, config, run_dir=out, resume=resume,
                     progress=progress)
    print_search_result(result, out)
    return result


@options.config_command(DnasConfig, "dnas")
def dnas_command(
    config: DnasConfig,
    cost: Annotated[str, typer.Option("--cost", help=COST_HELP)],
    space: Annotated[str, typer.Option("--space", help="Layer-wise space.")] = "fbnet-cifar",
    out: options.Out = None,
    resume: options.Resume = False,
    data_dir: options.DataDir = None,
    cifar: options.Cifar = None,
) -> None:
    """FBNet DNAS on CIFAR-10: CE * alpha * log(1 + LAT)^beta with LAT from --cost.

    By default the six width/stride-changing layers are fixed to k3_e6 (--fix-transitions).
    """
    from hwnas.dnas.layerwise import run_dnas
    from hwnas.spaces import get_space

    search_space = get_space(space, "dnas")
    cost_model = resolve_cost(cost, search_space, data_dir)
    config.check_runnable()
    run_dir = out or Path("runs") / f"dnas-{space}-{Path(cost).stem}-seed{config.seed}"
    probe_run(run_dir, command="dnas", resume=resume)
    search_with_progress(run_dnas, search_space, cost_model, config, load_cifar(cifar, data_dir),
                         run_dir, resume)


@options.config_command(DMaskingConfig, "dmasking")
def dmasking_command(
    config: DMaskingConfig,
    cost: Annotated[str, typer.Option("--cost", help="LUT file of the space (or of its -sparse "
                                      "variant), flops or params.")],
    space: Annotated[str, typer.Option("--space", help="DMasking space.")] = "dmasking-cifar",
    out: options.Out = None,
    resume: options.Resume = False,
    data_dir: options.DataDir = None,
    cifar: options.Cifar = None,
) -> None:
    """DMaskingNAS on CIFAR-10: widths, resolution and blocks with shared-weight masks."""
    from hwnas.dnas.dmasking_cost import ShapeCostTables
    from hwnas.dnas.masked import run_dmasking
    from hwnas.spaces import get_space

    search_space = get_space(space, "dmasking")
    cost_model = resolve_cost(cost, search_space, data_dir)
    config.check_runnable()
    ShapeCostTables(search_space, cost_model, mode=config.cost_mode)  # before loading CIFAR-10
    run_dir = out or Path("runs") / f"dmasking-{space}-{Path(cost).stem}-seed{config.seed}"
    probe_run(run_dir, command="dmasking", resume=resume)
    search_with_progress(run_dmasking, search_space, cost_model, config,
                         load_cifar(cifar, data_dir), run_dir, resume)
