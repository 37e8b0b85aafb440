"""Options shared by the differentiable searches (``search dnas``, ``search dmasking``).

Each is an ``Annotated`` type carrying its typer option; the defaults stay in the command
signatures, so every command shows its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Epochs = Annotated[int, typer.Option(min=1, help="Search epochs.")]
WarmupEpochs = Annotated[int, typer.Option(
    min=0, help="Epochs of weight training before theta updates start.")]
SubsetPerClass = Annotated[Optional[int], typer.Option(
    min=2, help="Class-balanced CIFAR-10 subset per class, split 80/20 (default all).")]
BatchSize = Annotated[int, typer.Option(min=2)]
WeightLr = Annotated[float, typer.Option(help="SGD learning rate of the weights.")]
ThetaLr = Annotated[float, typer.Option(help="Adam learning rate of theta.")]
Alpha = Annotated[float, typer.Option(help="FBNet loss alpha.")]
Beta = Annotated[float, typer.Option(help="FBNet loss beta.")]
TargetLatency = Annotated[Optional[float], typer.Option(
    "--target-latency", help="Hard budget form of the loss, in the cost's unit.")]
TargetForm = Annotated[str, typer.Option(
    "--target-form", help="With --target-latency: 'budget' (penalise only above it) or "
    "'absolute' (two-sided, hold the expected latency at it).")]
WarmStart = Annotated[Optional[Path], typer.Option(
    "--warm-start", help="Start the supernet weights from another run's checkpoint.pt of the "
    "same space (e.g. a weights-only run, --warmup-epochs equal to --epochs).")]
Samples = Annotated[int, typer.Option(min=1, help="Architectures drawn from P_theta.")]
Seed = Annotated[int, typer.Option(min=0)]
Threads = Annotated[int, typer.Option(min=1, help="torch threads.")]
RunDirectory = Annotated[Optional[Path], typer.Option("--out", help="Run directory.")]
Resume = Annotated[bool, typer.Option(help="Continue the run directory's checkpoint.")]
DataDir = Annotated[Optional[Path], typer.Option("--data-dir")]
Cifar = Annotated[Optional[Path], typer.Option(
    "--cifar", help="Official CIFAR-10 distribution folder instead of the data folder's.")]
