"""``hwnas search chamnet|dnas|dmasking|diagnose``: ChamNet adaptation here; FBNet DNAS, FBNetV2
DMasking and the supernet diagnostic in :mod:`hwnas.cli.dnas`, :mod:`hwnas.cli.dmasking` and
:mod:`hwnas.cli.diagnose`.

    hwnas search chamnet --space nb201 --cost nb201:hwnb_cifar10_pixel3_latency_ms \\
        --latency-ms 20 --latency-ms 30 --evaluations 100 --out runs/chamnet-pixel3

``--cost``: a LUT file from ``hwnas lut build`` (chamnet-cifar / fbnet-* spaces), an HW-NAS-Bench
device table (``raspi4``, ``pixel3``, ``eyeriss``, ``fpga``; FBNet CIFAR space), ``nb201:<latency
column>`` (nb201 space) or ``flops`` (budget in MFLOPs, given with ``--latency-ms``). Each
``--latency-ms`` value is one budget; ChamNet answers one architecture per budget. ``--energy
MEASURED.json:LIMIT`` adds an energy constraint to every budget: ChamNet's energy predictor, a GP
(log target) fitted on measured architectures, ``{"unit": "mJ", "measurements": [{"arch": <compact
arch string, or NB201 string>, "energy": <value>}, ...]}``. ``--evaluator``:
``nb201:<accuracy column>`` (tabular) or ``cifar10`` (short CIFAR-10 training on this CPU).
The run directory gets config.json, history.jsonl, result.json and pareto.png; rerun with the
same ``--out`` to resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from hwnas.cli.diagnose import diagnose_command
from hwnas.cli.dmasking import dmasking_command
from hwnas.cli.dnas import dnas_command
from hwnas.errors import HwnasError

app = typer.Typer(help="Architecture search: ChamNet (predictor-based adaptation), FBNet DNAS "
                  "and FBNetV2 DMasking (differentiable); diagnose a DNAS run's supernet.",
                  no_args_is_help=True)

SPACES = ("chamnet", "chamnet-cifar", "nb201", "fbnet-cifar", "fbnet-cifar100")
DEVICES = ("raspi4", "pixel3", "eyeriss", "fpga")


def resolve_space(name: str) -> Any:
    if name == "nb201":
        from hwnas.spaces.nb201 import nb201_space

        return nb201_space()
    if name not in SPACES:
        raise HwnasError(f"unknown --space {name!r} (known: {', '.join(SPACES)})")
    from hwnas.spaces import get_space

    return get_space(name)


def resolve_evaluator(text: str, space: Any, data_dir: Optional[Path], run_dir: Path,
                      seed: int) -> Any:
    from hwnas.evolution.evaluators import CifarTrainingEvaluator, NB201Evaluator

    if text.startswith("nb201:") or text == "nb201":
        if space.name != "nb201":
            raise HwnasError(f"--evaluator {text!r} needs --space nb201, got {space.name!r}")
        column = text.partition(":")[2] or "cifar10_test_200ep"
        return NB201Evaluator(column, data_dir=data_dir)
    if text == "cifar10":
        if space.name == "nb201":
            raise HwnasError("--evaluator cifar10 cannot train NB201 cells: use nb201:<column>")
        from hwnas.data.cifar import load_cifar10
        from hwnas.train.recipe import TrainRecipe

        data = load_cifar10(data_dir=data_dir)
        return CifarTrainingEvaluator(space, data, TrainRecipe(epochs=2, batch_size=64, seed=seed),
                                      run_dir / "trainings", seed=seed)
    raise HwnasError(f"unknown --evaluator {text!r} (known: nb201:<accuracy column>, cifar10)")


def resolve_cost(text: str, space: Any, evaluator: Any, data_dir: Optional[Path]) -> Any:
    if text.startswith("nb201:"):
        if space.name != "nb201":
            raise HwnasError(f"--cost {text!r} needs --space nb201, got {space.name!r}")
        from hwnas.data.tables import nb201_latency_columns

        column = text.partition(":")[2]
        if column not in nb201_latency_columns(data_dir):
            raise HwnasError(f"--cost {text!r}: unknown latency column {column!r} (known: "
                             f"{', '.join(nb201_latency_columns(data_dir))})")
        return evaluator.latency_cost(column)
    if space.name == "nb201":
        raise HwnasError(f"--space nb201 is priced by --cost nb201:<latency column>, got {text!r}")
    if text == "flops":
        from hwnas.cost.flops import FlopsCost

        return FlopsCost()
    if text in DEVICES:
        if space.name not in ("fbnet-cifar", "fbnet-cifar100"):
            raise HwnasError(f"--cost {text!r} (HW-NAS-Bench FBNet table) needs --space "
                             f"fbnet-cifar or fbnet-cifar100, got {space.name!r}")
        from hwnas.cost.device_table import load_device_table

        # The tables price the 100-class network; for 10 classes only the FC differs (a
        # constant), which is the documented opt-in of load_device_table.
        return load_device_table(text, data_dir,
                                 allow_num_classes_mismatch=space.name == "fbnet-cifar")
    path = Path(text)
    if not path.exists():
        raise HwnasError(f"--cost {text!r} is not a LUT file, a device ({', '.join(DEVICES)}), "
                         f"nb201:<column> or flops")
    from hwnas.cost.lut import LatencyTable

    table = LatencyTable.load(path)
    table.check_space(space)
    return table


def energy_constraint(text: str, space: Any, evaluator: Any) -> tuple[Any, float]:
    """``FILE:LIMIT`` -> (vectorised GP energy predictor, limit); see the module docstring."""
    import numpy as np

    from hwnas.evolution.chamnet import default_encoder
    from hwnas.io import read_json
    from hwnas.predictors.gp import GaussianProcessPredictor

    path_text, _, limit_text = text.rpartition(":")
    try:
        limit = float(limit_text)
    except ValueError:
        raise HwnasError(f"--energy must be FILE:LIMIT, got {text!r}") from None
    document = read_json(Path(path_text), "energy measurements")
    rows = document.get("measurements") if isinstance(document, dict) else None
    if not isinstance(rows, list) or len(rows) < 3:
        raise HwnasError(f"{path_text}: needs 'measurements', a list of at least 3 "
                         f"{{arch, energy}} objects")
    choices, values = [], []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or "arch" not in row or "energy" not in row:
            raise HwnasError(f"{path_text}: measurements[{index}] needs 'arch' and 'energy'")
        if space.name == "nb201":
            choices.append(space.parse(row["arch"]))
        else:
            from hwnas.arch.spec import ArchSpec

            choices.append(space.choices_of(ArchSpec.from_string(row["arch"])))
        values.append(row["energy"])
    encode = default_encoder(space, evaluator)
    predictor = GaussianProcessPredictor(target_transform="log").fit(
        encode(np.array(choices, dtype=np.int64)), np.asarray(values, dtype=float))

    def predicted_energy(matrix: Any) -> Any:
        return predictor.predict(encode(np.atleast_2d(matrix)))

    predicted_energy.name = "predicted energy"  # type: ignore[attr-defined]
    predicted_energy.unit = str(document.get("unit", ""))  # type: ignore[attr-defined]
    return predicted_energy, limit


@app.command("chamnet")
def chamnet(
    space: str = typer.Option(..., "--space", help=", ".join(SPACES)),
    cost: str = typer.Option(..., "--cost",
                             help="LUT file, raspi4|pixel3|eyeriss|fpga, nb201:<column>, flops"),
    latency_ms: List[float] = typer.Option(..., "--latency-ms",
                                           help="budget on --cost; repeat for several budgets"),
    energy: Optional[str] = typer.Option(None, "--energy", help="energy predictor:limit"),
    evaluations: int = typer.Option(..., "--evaluations", help="architectures to evaluate"),
    evaluator: Optional[str] = typer.Option(
        None, "--evaluator",
        help="nb201:<accuracy column> (default for nb201: cifar10_test_200ep) or cifar10"),
    initial: int = typer.Option(10, "--initial", help="random feasible architectures first"),
    batch_size: int = typer.Option(5, "--batch-size", help="architectures per BO round"),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(Path("chamnet-run"), "--out", help="run directory (resumable)"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="hwnas data folder"),
) -> None:
    """Search SPACE for the most accurate architecture within each --latency-ms budget."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from hwnas.evolution.chamnet import plot_pareto, run_chamnet

    if evaluations < 2:
        raise HwnasError(f"--evaluations must be >= 2, got {evaluations}")
    if seed < 0:
        raise HwnasError(f"--seed must be >= 0, got {seed}")
    for limit in latency_ms:
        if not limit > 0:
            raise HwnasError(f"--latency-ms must be positive, got {limit}")
    chosen_space = resolve_space(space)
    if evaluator is None:
        evaluator = "nb201:cifar10_test_200ep" if chosen_space.name == "nb201" else "cifar10"
    if chosen_space.name == "nb201":  # NB201 latency columns come with the tabular evaluator
        chosen_evaluator = resolve_evaluator(evaluator, chosen_space, data_dir, out, seed)
        model = resolve_cost(cost, chosen_space, chosen_evaluator, data_dir)
    else:  # check the cost before loading CIFAR-10
        model = resolve_cost(cost, chosen_space, None, data_dir)
        chosen_evaluator = resolve_evaluator(evaluator, chosen_space, data_dir, out, seed)
    budgets: list[Any] = [(model, limit) for limit in latency_ms]
    if energy is not None:
        energy_cost, energy_limit = energy_constraint(energy, chosen_space, chosen_evaluator)
        budgets = [[pair, (energy_cost, energy_limit)] for pair in budgets]
    with Progress(TextColumn("ChamNet evaluations"), BarColumn(), MofNCompleteColumn()) as bar:
        task = bar.add_task("chamnet", total=evaluations)
        result = run_chamnet(
            chosen_space, chosen_evaluator, budgets, evaluations=evaluations,
            initial_samples=initial, batch_size=batch_size, seed=seed, run_dir=out,
            on_progress=lambda done, total: bar.update(task, completed=done))
    unit = getattr(model, "unit", "")
    plot_pareto(result, out / "pareto.png", cost_label=f"{getattr(model, 'name', cost)} {unit}")
    for index, (budget, best) in enumerate(zip(result.budgets, result.best)):
        if best is None:
            typer.echo(f"{budget}: no feasible architecture evaluated")
        else:
            typer.echo(f"{budget}: accuracy {best['accuracy']:.2f} %, cost "
                       f"{best['costs'][index][0]:.4g} {unit}, {best['arch']}")
    typer.echo(f"wrote {out}/config.json, history.jsonl, result.json, pareto.png")


app.command("dnas")(dnas_command)
app.command("dmasking")(dmasking_command)
app.command("diagnose")(diagnose_command)
