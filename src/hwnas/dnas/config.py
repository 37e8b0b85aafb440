"""The validated hyper-parameters of a DNAS run (``config.json`` of the run directory).

Defaults and where they come from (see ``reference/papers-and-peers.md`` section 1.3):
weights SGD lr 0.1, momentum 0.9, weight decay 1e-4, cosine over epochs; theta Adam lr 0.01,
weight decay 5e-4 (the public FBNet reimplementations' configs); temperature 5.0 decayed by
exp(-0.045) per epoch; loss alpha 0.2, beta 0.6 (FBNet); with a target latency the one-sided
"budget" form by default (:mod:`hwnas.dnas.loss`). ``warm_start`` names another search's
checkpoint whose supernet weights this one starts from (theta starts uniform).
``warmup_epochs`` (weights only, no theta updates) is not given by the paper; reimplementations
use 2-10 of 90 epochs.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

from hwnas.cost.base import CostModel, LayerCostMatrix
from hwnas.dnas.loss import check_loss_parameters
from hwnas.dnas.supernet import MODES, check_weight_sharing
from hwnas.dnas.temperature import check_schedule
from hwnas.errors import HwnasError
from hwnas.spaces.fbnet import LayerwiseSpace


#: "gumbel": FBNet's Gumbel-softmax gradient; "reinforce": score function with a leave-one-out
#: baseline over ``paths_per_batch`` paths (:func:`hwnas.dnas.steps.reinforce_theta_step`).
THETA_ESTIMATORS = ("gumbel", "reinforce")


@dataclass(frozen=True)
class DnasConfig:
    """Every hyper-parameter of :func:`hwnas.dnas.search.run_dnas`; validated on creation."""

    epochs: int
    warmup_epochs: int
    weight_lr: float
    momentum: float
    weight_decay: float
    weight_grad_clip: float | None
    theta_lr: float
    theta_weight_decay: float
    initial_temperature: float
    temperature_decay: float
    alpha: float
    beta: float
    target_latency: float | None
    target_form: str
    mode: str
    seed: int
    checkpoint_every: int | None
    num_samples: int
    device: str
    warm_start: str | None = None
    fixed_layers: tuple[tuple[int, str], ...] = ()
    theta_estimator: str = "gumbel"
    paths_per_batch: int = 4
    weight_sharing: str = "independent"
    #: initial last-BN scale of the searched residual candidates (``SuperNet``'s docstring)
    residual_scale: float = 0.0

    def __post_init__(self) -> None:
        _check_integer("epochs", self.epochs, minimum=1)
        _check_integer("warmup_epochs", self.warmup_epochs, minimum=0)
        if self.warmup_epochs > self.epochs:
            raise HwnasError(
                f"warmup_epochs must be <= epochs ({self.epochs}), got {self.warmup_epochs!r}"
            )
        for name in ("weight_lr", "weight_decay", "theta_lr", "theta_weight_decay"):
            _check_number(name, getattr(self, name), minimum=0.0)
        if self.weight_grad_clip is not None:
            _check_number("weight_grad_clip", self.weight_grad_clip, minimum=0.0)
            if self.weight_grad_clip == 0:
                raise HwnasError("weight_grad_clip must be positive or None, got 0")
        _check_number("momentum", self.momentum, minimum=0.0)
        if self.momentum >= 1:
            raise HwnasError(f"momentum must be in [0, 1), got {self.momentum!r}")
        check_schedule(self.initial_temperature, self.temperature_decay)
        check_loss_parameters(self.alpha, self.beta, self.target_latency, self.target_form)
        if self.target_form != "budget" and self.target_latency is None:
            raise HwnasError(f"target_form {self.target_form!r} needs a target_latency")
        if self.theta_estimator not in THETA_ESTIMATORS:
            raise HwnasError(f"theta_estimator must be one of {THETA_ESTIMATORS}, got "
                             f"{self.theta_estimator!r}")
        _check_integer("paths_per_batch", self.paths_per_batch, minimum=2)
        if not isinstance(self.fixed_layers, tuple):
            raise HwnasError(f"fixed_layers must be a mapping layer -> candidate, got "
                             f"{self.fixed_layers!r}")
        if self.warm_start is not None and (not isinstance(self.warm_start, str)
                                            or not self.warm_start):
            raise HwnasError(f"warm_start must be a checkpoint path, got {self.warm_start!r}")
        _check_number("residual_scale", self.residual_scale, minimum=0.0)
        check_weight_sharing(self.weight_sharing)
        if self.mode not in MODES:
            raise HwnasError(f"mode must be one of {MODES}, got {self.mode!r}")
        _check_integer("seed", self.seed, minimum=0)
        if self.checkpoint_every is not None:
            _check_integer("checkpoint_every", self.checkpoint_every, minimum=1)
        _check_integer("num_samples", self.num_samples, minimum=0)
        if not isinstance(self.device, str) or not self.device:
            raise HwnasError(f"device must be a device name such as 'cpu', got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON types only (tuples as lists), so it equals its own ``config.json`` on resume."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def field_names(cls) -> list[str]:
        return [field.name for field in fields(cls)]


def with_added_defaults(saved: Any) -> Any:
    """A run's saved config with the search fields it lacks at their defaults: fields added to
    :class:`DnasConfig` after the run was written (``theta_estimator``, ``weight_sharing`` ...),
    whose defaults are what the run did. Lets newer code resume older runs."""
    if not isinstance(saved, dict) or not isinstance(saved.get("search"), dict):
        return saved
    defaults = {field.name: field.default for field in fields(DnasConfig)
                if field.default is not MISSING}
    return {**saved, "search": {**json.loads(json.dumps(defaults)), **saved["search"]}}


def space_to_dict(space: LayerwiseSpace) -> dict[str, Any]:
    """A JSON description of the space, so a run directory says what was searched."""
    return {
        "name": space.name,
        "resolution": space.resolution,
        "stem": space.stem.to_dict(),
        "stages": [asdict(stage) for stage in space.stages],
        "head": space.head.to_dict(),
        "candidates": list(space.candidates),
        "e1_first_pointwise": space.e1_first_pointwise,
    }


def run_config(
    config: DnasConfig, space: LayerwiseSpace, cost_model: CostModel, costs: LayerCostMatrix
) -> dict[str, Any]:
    """The resolved configuration written to ``config.json`` and compared on resume."""
    return {
        "search": config.to_dict(),
        "space": space_to_dict(space),
        "cost_model": {
            "name": cost_model.name,
            "unit": cost_model.unit,
            "constant": float(costs.constant),
            "matrix": [[float(value) for value in row] for row in costs.matrix],
        },
    }


def first_difference(saved: Any, current: Any, path: str = "") -> str | None:
    """The dotted path of the first value that differs between two JSON values, else None."""
    if isinstance(saved, dict) and isinstance(current, dict):
        for key in list(saved) + [key for key in current if key not in saved]:
            difference = first_difference(saved.get(key), current.get(key), f"{path}.{key}")
            if difference:
                return difference
        return None
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        for index, (left, right) in enumerate(zip(saved, current)):
            difference = first_difference(left, right, f"{path}[{index}]")
            if difference:
                return difference
        return None
    return None if saved == current else (path.lstrip(".") or "<root>")


def _check_integer(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise HwnasError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_number(name: str, value: Any, *, minimum: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < minimum
    ):
        raise HwnasError(f"{name} must be a finite number >= {minimum}, got {value!r}")
