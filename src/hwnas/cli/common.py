"""What several commands share: the CIFAR-10 loader with its progress bar, ``--cost`` for any
space, and the rich progress of searches, trainings and measurements.

torch is imported inside the functions, so that ``hwnas --help`` starts fast.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwnas.errors import HwnasError

console = Console(stderr=True)
DEVICES = ("raspi4", "pixel3", "eyeriss", "fpga")
#: titles of the stages a LUT build or a network measurement reports
STAGE_TITLES = {"export": "exporting layers and networks",
                "timing": "timing blocks in worker processes"}
COST_HELP = ("LUT file (hwnas lut build), a device table (raspi4, pixel3, eyeriss, fpga; FBNet "
             "CIFAR spaces), nb201:<latency column> (nb201), flops or params.")


def load_cifar(cifar: Path | None, data_dir: Path | None) -> Any:
    """CIFAR-10 with a rich bar for the one-time JPEG decode; says how long it took."""
    from hwnas.data.cifar import load_cifar10

    started, decoded = time.perf_counter(), 0
    with Progress(TextColumn("decoding CIFAR-10 JPEGs (once)"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("decode", total=None)

        def advance(done: int, total: int) -> None:
            nonlocal decoded
            decoded = done
            bar.update(task, completed=done, total=total)

        data = load_cifar10(cifar, data_dir, progress=advance)
    how = f"decoded {decoded} JPEGs and cached them" if decoded else "loaded"
    console.print(f"{how}: {len(data.train_y)} train / {len(data.test_y)} test images "
                  f"in {time.perf_counter() - started:.1f} s ({data.source})")
    return data


def resolve_cost(text: str, space: Any, data_dir: Path | None) -> Any:
    """The cost model ``--cost`` names for ``space`` (:data:`COST_HELP`); refused when it cannot
    price the space."""
    if text.startswith("nb201:"):
        from hwnas.cost.device_table import NB201Latency

        model = NB201Latency(text.partition(":")[2], data_dir)
    elif text in ("flops", "params"):
        from hwnas.cost.flops import FlopsCost, ParamsCost

        model = FlopsCost() if text == "flops" else ParamsCost()
    elif text in DEVICES:
        from hwnas.cost.device_table import load_device_table

        # The tables price the 100-class network; for 10 classes only the FC differs (a
        # constant), which is the documented opt-in of load_device_table.
        model = load_device_table(text, data_dir,
                                  allow_num_classes_mismatch=space.name == "fbnet-cifar")
    else:
        path = Path(text)
        if not path.is_file():
            raise HwnasError(f"--cost {text!r} is not a LUT file, a device "
                             f"({', '.join(DEVICES)}), nb201:<column>, flops or params")
        from hwnas.cost.lut import LatencyTable

        model = LatencyTable.load(path)
    try:
        model.choice_cost(space)
    except HwnasError as error:
        raise HwnasError(f"--cost {text!r} cannot price space {space.name!r}: {error}") from None
    return model


@contextmanager
def progress_bars(*fields: str) -> Iterator[Progress]:
    """A transient rich progress display on stderr (``fields``: extra task fields shown)."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    columns += [TextColumn(f"{field} {{task.fields[{field}]:.3f}}") for field in fields]
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
        yield bar


class StageBars:
    """``on_progress(stage, done, total)`` of a LUT build or network timing as rich bars."""

    def __init__(self, bar: Progress) -> None:
        self.bar, self.tasks = bar, {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(STAGE_TITLES.get(stage, stage), total=total)
        self.bar.update(self.tasks[stage], completed=done, total=total)

    def clear(self) -> None:
        for task in self.tasks.values():
            self.bar.remove_task(task)
        self.tasks.clear()


class SearchBars:
    """One rich bar per (epoch, phase) of a differentiable search; called with
    :class:`hwnas.dnas.engine.SearchProgress`. Without ``steps_per_phase`` the bars have no
    total."""

    def __init__(self, bar: Progress, steps_per_phase: dict[str, int] | None = None) -> None:
        self.bar, self.steps_per_phase = bar, steps_per_phase
        self.task: Any = None
        self.current: tuple[int, str] | None = None

    def __call__(self, progress: Any) -> None:
        key = (progress.epoch, progress.phase)
        if key != self.current:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.current = key
            self.task = self.bar.add_task(
                f"epoch {progress.epoch + 1}/{progress.epochs} {progress.phase}",
                total=(self.steps_per_phase or {}).get(progress.phase), loss=float("nan"))
        self.bar.update(self.task, completed=progress.step, loss=progress.loss)


class TrainBars:
    """One rich bar per training epoch, each finished epoch's numbers printed."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task: Any = None

    def epoch_started(self, epoch: int, epochs: int, batches: int) -> None:
        self.task = self.bar.add_task(f"epoch {epoch}/{epochs}", total=batches, loss=float("nan"))

    def batch_done(self, loss: float) -> None:
        self.bar.update(self.task, advance=1, loss=loss)

    def epoch_done(self, record: Mapping[str, Any]) -> None:
        self.bar.remove_task(self.task)
        top1 = record["test_top1"]
        test = f"test top-1 {top1:.2f} %" if top1 is not None else "test not evaluated"
        self.bar.console.print(
            f"epoch {record['epoch']}: loss {record['loss']:.4f}, train acc "
            f"{record['train_acc']:.2f} %, {test}, lr {record['lr']:.4g}, "
            f"{record['seconds']:.1f} s")


def print_search_result(result: Any, run_dir: Path) -> None:
    """The derived architectures of a differentiable search as a table."""
    table = Table(title=f"derived architectures ({result.cost_name}, {result.cost_unit})")
    for column in ("rank", "predicted", "log P", "drawn", "architecture"):
        table.add_column(column)
    rows = [("argmax", result.argmax)]
    if result.within_target is not None:
        rows.append(("within target", result.within_target))
    rows += [(str(i + 1), d) for i, d in enumerate(result.samples)]
    for rank, derived in rows:
        table.add_row(rank, f"{derived.cost:.3f}", f"{derived.log_probability:.2f}",
                      str(derived.count), derived.arch)
    console.print(table)
    console.print(f"expected cost under P_theta: {result.expected_cost:.3f} {result.cost_unit}"
                  f" -> {run_dir}")
