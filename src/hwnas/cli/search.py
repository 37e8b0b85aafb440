"""``hwnas search chamnet|dnas|dmasking|diagnose``: ChamNet adaptation here; FBNet DNAS, FBNetV2
DMasking and the supernet diagnostic in :mod:`hwnas.cli.dnas` and :mod:`hwnas.cli.diagnose`.

    hwnas search chamnet --space nb201 --cost nb201:hwnb_cifar10_pixel3_latency_ms \\
        --latency-ms 20 --latency-ms 30 --evaluations 100 --out runs/chamnet-pixel3

``--cost``: see :data:`hwnas.cli.common.COST_HELP`; each ``--latency-ms`` value is one budget on
it (its unit: ms, MFLOPs, ...), and ChamNet answers one architecture per budget. ``--energy
MEASURED.json:LIMIT`` adds an energy constraint to every budget: ChamNet's energy predictor
(:func:`hwnas.cost.energy.fit_predicted_cost`). ``--evaluator``: ``nb201:<accuracy column>``
(tabular) or ``cifar10`` (short CIFAR-10 training on this CPU). The run folder gets config.json,
history.jsonl, result.json and pareto.png; ``--resume`` continues a killed run (or extends a
finished one to more ``--evaluations``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from hwnas.cli import options
from hwnas.cli.common import COST_HELP, load_cifar, progress_bars, resolve_cost
from hwnas.cli.diagnose import diagnose_command
from hwnas.cli.dnas import cells_command, dmasking_command, dnas_command
from hwnas.errors import HwnasError
from hwnas.evolution.config import ChamNetConfig
from hwnas.runs import probe_run

app = typer.Typer(help="Architecture search: ChamNet (predictor-based adaptation), FBNet DNAS "
                  "and FBNetV2 DMasking (differentiable); diagnose a DNAS run's supernet.",
                  no_args_is_help=True)


def resolve_evaluator(text: str, space: Any, config: ChamNetConfig, data_dir: Optional[Path],
                      cifar: Optional[Path], run_dir: Path) -> Any:
    from hwnas.evolution.evaluators import CifarTrainingEvaluator, NB201Evaluator

    if text.startswith("nb201:") or text == "nb201":
        if space.name != "nb201":
            raise HwnasError(f"--evaluator {text!r} needs --space nb201, got {space.name!r}")
        return NB201Evaluator(text.partition(":")[2] or "cifar10_test_200ep", data_dir=data_dir)
    if text == "cifar10":
        if space.name == "nb201":
            raise HwnasError("--evaluator cifar10 cannot train NB201 cells: use nb201:<column>")
        from hwnas.train.recipe import TrainRecipe

        recipe = TrainRecipe(epochs=config.evaluator_epochs, batch_size=64, seed=config.seed)
        return CifarTrainingEvaluator(space, load_cifar(cifar, data_dir), recipe,
                                      run_dir / "trainings", seed=config.seed,
                                      train_per_class=config.train_per_class,
                                      valid_per_class=config.valid_per_class)
    raise HwnasError(f"unknown --evaluator {text!r} (known: nb201:<accuracy column>, cifar10)")


def budgets(cost: Any, limits: list[float], energy: Optional[str], space: Any) -> list[Any]:
    """One budget per limit on ``cost``, each with the ``--energy FILE:LIMIT`` constraint."""
    for limit in limits:
        if not limit > 0:
            raise HwnasError(f"--latency-ms must be positive, got {limit}")
    pairs: list[Any] = [(cost, limit) for limit in limits]
    if energy is None:
        return pairs
    from hwnas.cost.energy import fit_predicted_cost

    path, _, limit_text = energy.rpartition(":")
    try:
        energy_limit = float(limit_text)
    except ValueError:
        raise HwnasError(f"--energy must be FILE:LIMIT, got {energy!r}") from None
    predicted = fit_predicted_cost(path, space)
    return [[pair, (predicted, energy_limit)] for pair in pairs]


@app.command("chamnet")
@options.config_command(ChamNetConfig, "chamnet")
def chamnet(
    config: ChamNetConfig,
    space: Annotated[str, typer.Option("--space", help="Search space (hwnas.spaces).")],
    cost: Annotated[str, typer.Option("--cost", help=COST_HELP)],
    latency_ms: Annotated[List[float], typer.Option(
        "--latency-ms", help="Budget on --cost (its unit); repeat for several budgets.")],
    energy: Annotated[Optional[str], typer.Option(
        "--energy", help="MEASURED.json:LIMIT, a predicted-energy constraint.")] = None,
    evaluator: Annotated[Optional[str], typer.Option(
        "--evaluator", help="nb201:<accuracy column> (default for nb201: cifar10_test_200ep) "
        "or cifar10 (default otherwise).")] = None,
    out: options.Out = Path("chamnet-run"),
    resume: options.Resume = False,
    data_dir: options.DataDir = None,
    cifar: options.Cifar = None,
) -> None:
    """Search SPACE for the most accurate architecture within each --latency-ms budget."""
    from hwnas.evolution.chamnet import plot_pareto, run_chamnet
    from hwnas.spaces import get_space

    chosen_space = get_space(space, "chamnet")
    probe_run(out, command="chamnet", resume=resume)
    model = resolve_cost(cost, chosen_space, data_dir)
    limits = budgets(model, latency_ms, energy, chosen_space)
    default = "nb201:cifar10_test_200ep" if chosen_space.name == "nb201" else "cifar10"
    chosen = resolve_evaluator(evaluator or default, chosen_space, config, data_dir, cifar,
                               out)
    with progress_bars() as bar:
        task = bar.add_task(f"ChamNet evaluations -> {out}", total=config.evaluations)
        result = run_chamnet(chosen_space, chosen, limits, config, run_dir=out, resume=resume,
                             on_progress=lambda done, total: bar.update(task, completed=done))
    plot_pareto(result, out / "pareto.png", cost_label=f"{model.name} {model.unit}")
    for index, (budget, best) in enumerate(zip(result.budgets, result.best)):
        if best is None:
            typer.echo(f"{budget}: no feasible architecture evaluated")
        else:
            typer.echo(f"{budget}: accuracy {best['accuracy']:.2f} %, cost "
                       f"{best['costs'][index][0]:.4g} {model.unit}, {best['arch']}")
    typer.echo(f"wrote {out}/config.json, history.jsonl, result.json, pareto.png")


app.command("dnas")(dnas_command)
app.command("dmasking")(dmasking_command)
app.command("dnas-nb201")(cells_command)
app.command("diagnose")(diagnose_command)
