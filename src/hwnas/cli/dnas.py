"""``hwnas search dnas`` (FBNet) and ``hwnas search dmasking`` (FBNetV2) on CIFAR-10.

    hwnas search dnas --cost lut.json --target-latency 1.8 --out runs/dnas
    hwnas lut build --space dmasking-cifar --calibration 0 --correction 0 --out lut-dm.json
    hwnas search dmasking --cost lut-dm.json --epochs 8 --out runs/dmasking
    hwnas search dnas-nb201 --cost nb201:hwnb_cifar10_pixel3_latency_ms --target-latency 8

Each translates its options into its config (:class:`hwnas.dnas.config.DnasConfig`,
:class:`hwnas.dnas.config.DMaskingConfig`; ``--config FILE`` for a preset such as
``configs/demo.yaml``) and its problem (:mod:`hwnas.dnas.layerwise`, :mod:`hwnas.dnas.masked`),
and draws progress bars; the engine, its run folder and resume live in :mod:`hwnas.dnas`.
"""

# no "from __future__ import annotations": the command's option annotations use closure values

from pathlib import Path
from typing import Annotated, Any, Callable

import typer

from hwnas.cli import options
from hwnas.cli.common import (
    COST_HELP, SearchBars, console, load_cifar, print_search_result, progress_bars, resolve_cost,
)
from hwnas.dnas.config import DMaskingConfig, DnasConfig, SearchSettings
from hwnas.runs import probe_run


def search_with_progress(problem: Any, data: Any, out: Path, resume: bool) -> Any:
    """:func:`hwnas.dnas.engine.run_search` on ``data``'s search batches with a progress bar
    per epoch and phase, then the derived architectures printed."""
    from hwnas.dnas.data import search_batches
    from hwnas.dnas.engine import run_search

    weights, theta = search_batches(data, problem.config)
    console.print(f"searching {problem.space.name} for {problem.cost_name} "
                  f"({problem.cost_unit}): {weights.num_images} weight / {theta.num_images} "
                  f"theta images -> {out}")
    with progress_bars("loss") as bar:
        progress = SearchBars(bar, {"weights": len(weights), "theta": len(theta)})
        result = run_search(problem, weights, theta, run_dir=out, resume=resume,
                            progress=progress)
    print_search_result(result, out)
    return result


def search_command(config_type: type, strategy: str, default_space: str, cost_help: str,
                   summary: str) -> Callable[..., None]:
    """The ``hwnas search <strategy>`` command of a differentiable search: its options, the
    checks made before any work (space, cost, target, run folder), then the search."""

    @options.config_command(config_type, strategy)
    def command(
        config: SearchSettings,
        cost: Annotated[str, typer.Option("--cost", help=cost_help)],
        space: Annotated[str, typer.Option("--space", help=f"Space ({strategy}).")]
            = default_space,
        out: options.Out = None,
        resume: options.Resume = False,
        data_dir: options.DataDir = None,
        cifar: options.Cifar = None,
    ) -> None:
        from hwnas.dnas.cellwise import CellProblem
        from hwnas.dnas.layerwise import LayerwiseProblem
        from hwnas.dnas.masked import MaskedProblem
        from hwnas.spaces import get_space

        search_space = get_space(space, strategy)
        cost_model = resolve_cost(cost, search_space, data_dir)
        problems = {"dnas": LayerwiseProblem, "dmasking": MaskedProblem,
                    "dnas-nb201": CellProblem}
        problem = problems[strategy](search_space, cost_model, config)  # checked before the data
        run_dir = out or Path("runs") / f"{strategy}-{space}-{Path(cost).stem}-seed{config.seed}"
        probe_run(run_dir, command=strategy, resume=resume)
        search_with_progress(problem, load_cifar(cifar, data_dir), run_dir, resume)

    command.__doc__ = summary
    return command


dnas_command = search_command(
    DnasConfig, "dnas", "fbnet-cifar", COST_HELP,
    "FBNet DNAS on CIFAR-10: CE * alpha * log(1 + LAT)^beta with LAT from --cost.\n\n"
    "By default the six width/stride-changing layers are fixed to k3_e6 (--fix-transitions).")
cells_command = search_command(
    SearchSettings, "dnas-nb201", "nb201",
    "nb201:<latency column>, a LUT of space nb201 (hwnas lut build --space nb201), flops or "
    "params.",
    "FBNet DNAS over the NAS-Bench-201 cells on CIFAR-10 (one theta shared by every cell; the "
    "benchmark's C = 16, N = 5 supernet).")
dmasking_command = search_command(
    DMaskingConfig, "dmasking", "dmasking-cifar",
    "LUT file of the space (or of its -sparse variant), flops or params.",
    "DMaskingNAS on CIFAR-10: widths, resolution and blocks with shared-weight masks.")
