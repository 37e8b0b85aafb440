"""The training recipe: SGD with Nesterov momentum, linear warm-up, cosine decay to zero.

The shape is the common CIFAR-10 from-scratch recipe (SGD momentum 0.9, weight decay 5e-4,
random crop + flip; He et al. 2016, Sec. 4.2) with the cosine schedule of Loshchilov & Hutter
2017 instead of step decay. The defaults are sized for SHORT CPU runs, from measurements on the
2-core development machine (numbers in the report of the training issue):

* ``epochs=10``, ``batch_size=64``: an FBNet-CIFAR sample trains at ~120-165 images/s on two
  idle cores (channels_last; 10-20x less when other processes load them), so a 5-minute run is
  ~45k images, e.g. a 5k-image class-balanced subset for ~9 epochs. Batch 64 trained faster
  than 128 (164 vs 124 images/s) and gives twice the optimiser steps per image, which is what a
  small budget lacks. A cosine schedule ending at zero suits a fixed budget.
* ``lr=0.025`` and ``grad_clip_norm=5.0``, the values of the DARTS CIFAR-10 evaluation recipe
  (Liu et al. 2019, Sec. 5.2: lr 0.025, batch 96, cosine, gradient norm clipped at 5), reached
  after a linear warm-up over ``warmup_fraction=0.1`` of the steps (Goyal et al. 2017). The
  usual ResNet value lr 0.1 diverged here: the loss of an FBNet-CIFAR sample jumped from 2.3 to
  8-16 within three steps (its 1504-wide head makes the classifier's effective step large), and
  lr 0.05 with warm-up still drifted up to 4-6 within 20 steps; lr 0.02 stayed near 2.4.
* weight decay 5e-4 (the CIFAR value, not the 4e-5 of ImageNet mobile nets): small data sets
  overfit. It is applied to conv and linear weights only, not to BatchNorm parameters or biases.
* ``label_smoothing=0.0``: off by default (Szegedy et al. 2016 use 0.1 on ImageNet).

The learning rate is a pure function of the global step (:func:`learning_rate`), so a resumed run
needs no scheduler object: the step count is the whole schedule state.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from hwnas.errors import HwnasError


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HwnasError(f"{name} must be a positive integer, got {value!r}")


def _check_number(name: str, value: Any, *, low: float, high: float, closed_high: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HwnasError(f"{name} must be a finite number, got {value!r}")
    if value < low or value > high or (not closed_high and value == high):
        bracket = "]" if closed_high else ")"
        raise HwnasError(f"{name} must be in [{low}, {high}{bracket}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class TrainRecipe:
    """Hyper-parameters of one from-scratch training run (see the module docstring)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.025
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    grad_clip_norm: float | None = 5.0
    warmup_fraction: float = 0.1
    seed: int = 0
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        _check_positive_int("epochs", self.epochs)
        _check_positive_int("batch_size", self.batch_size)
        _check_positive_int("eval_batch_size", self.eval_batch_size)
        _check_number("lr", self.lr, low=0.0, high=10.0, closed_high=True)
        if self.lr == 0:
            raise HwnasError("lr must be positive, got 0")
        _check_number("momentum", self.momentum, low=0.0, high=1.0, closed_high=False)
        _check_number("weight_decay", self.weight_decay, low=0.0, high=1.0, closed_high=False)
        _check_number("label_smoothing", self.label_smoothing, low=0.0, high=1.0, closed_high=False)
        if self.grad_clip_norm is not None:
            _check_number("grad_clip_norm", self.grad_clip_norm, low=0.0, high=math.inf,
                          closed_high=False)
            if self.grad_clip_norm == 0:
                raise HwnasError("grad_clip_norm must be positive or None, got 0")
        if not isinstance(self.nesterov, bool):
            raise HwnasError(f"nesterov must be true or false, got {self.nesterov!r}")
        if self.nesterov and self.momentum == 0:
            raise HwnasError("nesterov needs a positive momentum, got momentum 0")
        _check_number("warmup_fraction", self.warmup_fraction, low=0.0, high=1.0,
                      closed_high=False)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise HwnasError(f"seed must be a non-negative integer, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> TrainRecipe:
        if not isinstance(data, dict):
            raise HwnasError(f"a training recipe must be a JSON object, got {type(data).__name__}")
        known = {field for field in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise HwnasError(f"unknown training recipe field(s): {', '.join(unknown)}")
        return cls(**data)


def learning_rate(recipe: TrainRecipe, step: int, steps_per_epoch: int) -> float:
    """The learning rate of global step ``step`` (0-based) of ``epochs * steps_per_epoch``.

    Linear warm-up over the first ``W = round(warmup_fraction * T)`` of the ``T`` steps,
    ``lr * (step + 1) / W``, then cosine decay over the remaining ``T - W`` steps:
    ``lr_t = lr * (1 + cos(pi * (step - W) / (T - W))) / 2`` (SGDR without restarts).
    """
    total = recipe.epochs * steps_per_epoch
    warmup = round(recipe.warmup_fraction * total)
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return recipe.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
