"""The training recipe: SGD with Nesterov momentum, linear warm-up, cosine decay to zero.

The shape is the common CIFAR-10 from-scratch recipe (SGD momentum 0.9, weight decay 5e-4,
random crop + flip; He et al. 2016, Sec. 4.2) with the cosine schedule of Loshchilov & Hutter
2017 instead of step decay. The defaults are sized for short CPU runs (the throughputs and
learning rates that decided them: docs/reference.md section 5):

* ``epochs=10``, ``batch_size=64``: a few minutes of two cores train a 5k-image class-balanced
  subset for about ten epochs; batch 64 gives twice the optimiser steps per image of 128, which
  is what a small budget lacks. A cosine schedule ending at zero suits a fixed budget.
* ``lr=0.025`` and ``grad_clip_norm=5.0``, the values of the DARTS CIFAR-10 evaluation recipe
  (Liu et al. 2019, Sec. 5.2: lr 0.025, batch 96, cosine, gradient norm clipped at 5), reached
  after a linear warm-up over ``warmup_fraction=0.1`` of the steps (Goyal et al. 2017). The
  usual ResNet value lr 0.1 is unstable for FBNet-CIFAR networks (their 1504-wide head makes the
  classifier's effective step large).
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
from hwnas.settings import check, from_mapping, setting


@dataclass(frozen=True, kw_only=True)
class TrainRecipe:
    """Every setting of one from-scratch training run (see the module docstring): the
    optimiser and schedule, the class-balanced subsets of CIFAR-10 it trains and tests on
    (drawn from ``seed``), how often it tests, and its threads."""

    epochs: int = setting(10, "Training epochs.", minimum=1)
    batch_size: int = setting(64, "Mini-batch size.", minimum=1)
    lr: float = setting(0.025, "Peak learning rate (cosine decay to 0).", minimum=0, maximum=10)
    momentum: float = setting(0.9, "SGD momentum.", minimum=0, below=1, cli=False)
    nesterov: bool = setting(True, "Nesterov momentum.", cli=False)
    weight_decay: float = setting(5e-4, "L2 on conv/linear weights.", minimum=0, below=1)
    label_smoothing: float = setting(0.0, "Label smoothing.", minimum=0, below=1)
    grad_clip_norm: float | None = setting(5.0, "Clip the gradient norm at this value (0 or "
                                           "none: no clipping).", minimum=0,
                                           option="--grad-clip")
    warmup_fraction: float = setting(0.1, "Fraction of all steps spent in linear warm-up.",
                                     minimum=0, below=1)
    seed: int = setting(0, "Seed: init, order, augmentation, subset.", minimum=0)
    eval_batch_size: int = setting(256, "Evaluation batch size.", minimum=1, cli=False)
    subset_per_class: int | None = setting(None, "Train on a class-balanced subset of N per "
                                           "class (none: all).", minimum=1, compared=False)
    test_per_class: int | None = setting(None, "Test on a class-balanced subset of N per class "
                                         "(none: all).", minimum=1, compared=False)
    eval_every: int = setting(1, "Test every N epochs and after the last.", minimum=1,
                              compared=False)
    threads: int | None = setting(None, "torch threads (none: the cores other processes leave "
                                  "free).", minimum=1, compared=False)

    def __post_init__(self) -> None:
        check(self)
        if self.lr == 0:
            raise HwnasError("lr must be positive, got 0")
        if self.nesterov and self.momentum == 0:
            raise HwnasError("nesterov needs a positive momentum, got momentum 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> TrainRecipe:
        return from_mapping(cls, data, "training recipe")


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
