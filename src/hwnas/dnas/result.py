"""Deriving architectures from ``P_theta`` and the :class:`SearchResult` saved as ``result.json``.

FBNet (Wu et al. 2019, section 4.1) samples several architectures from the final ``P_theta`` and
trains them from scratch. We keep both readings: the argmax architecture (most probable under
the independent per-layer distribution) and ``N`` draws from ``P_theta``, de-duplicated and
ranked by the cost model's predicted cost (cheapest first). A search with a latency target also
derives the most probable architecture whose predicted cost meets the target
(:func:`derive_within_target`): at most ``T`` for the one-sided budget, within
``[TARGET_BAND * T, T]`` for the two-sided target. Where ``P_theta`` is still spread, the
per-layer argmax can land far from the target: each layer's mode can be its cheapest candidate
while the expectation sits at ``T``.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hwnas.cost.base import CostModel, LayerCostMatrix
from hwnas.errors import HwnasError
from hwnas.io import atomic_write_json, read_json
from hwnas.spaces.fbnet import LayerwiseSpace


#: the two-sided target's derived network costs between this fraction of T and T
TARGET_BAND = 0.95
#: floor of a probability before its log: a zero-probability option gets a very negative log
PROBABILITY_FLOOR = 1e-300


def lower_bound(target: float, target_form: str) -> float | None:
    """The within-target derivation's lower cost bound: ``TARGET_BAND * T`` for the two-sided
    ("absolute") target, none for the one-sided budget."""
    return TARGET_BAND * target if target_form == "absolute" else None


@dataclass(frozen=True)
class DerivedArchitecture:
    """One derived architecture: compact string, choices, predicted cost, ``log P_theta``."""

    arch: str
    choices: tuple[int, ...]
    cost: float
    log_probability: float
    count: int = 1  # how often it was drawn among the samples (1 for the argmax)

    @classmethod
    def from_dict(cls, data: Any) -> DerivedArchitecture:
        data = _fields_of(cls, data, "derived architecture")
        return cls(
            arch=str(data["arch"]),
            choices=tuple(int(choice) for choice in data["choices"]),
            cost=float(data["cost"]),
            log_probability=float(data["log_probability"]),
            count=int(data["count"]),
        )


@dataclass(frozen=True)
class SearchResult:
    """What a DNAS run produced; ``result.json`` holds exactly :meth:`to_dict`."""

    space: str
    candidates: tuple[str, ...]
    cost_name: str
    cost_unit: str
    epochs: int
    seed: int
    target_latency: float | None
    final_temperature: float
    expected_cost: float  # E_theta[cost] under the final P_theta (layer cost matrix)
    argmax: DerivedArchitecture
    samples: tuple[DerivedArchitecture, ...]  # ranked by cost, cheapest first
    probabilities: tuple[tuple[float, ...], ...] = field(repr=False)  # final P_theta [L, K]
    #: the most probable architecture meeting ``target_latency`` (None without a target)
    within_target: DerivedArchitecture | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["candidates"] = list(self.candidates)
        data["probabilities"] = [list(row) for row in self.probabilities]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> SearchResult:
        data = _fields_of(cls, data, "search result")
        try:
            return cls._from_checked_dict(data)
        except (TypeError, ValueError, AttributeError) as error:
            if isinstance(error, HwnasError):
                raise
            raise HwnasError(f"search result: malformed value ({error})") from None

    @classmethod
    def _from_checked_dict(cls, data: dict[str, Any]) -> SearchResult:
        target = data["target_latency"]
        return cls(
            space=str(data["space"]),
            candidates=tuple(str(name) for name in data["candidates"]),
            cost_name=str(data["cost_name"]),
            cost_unit=str(data["cost_unit"]),
            epochs=int(data["epochs"]),
            seed=int(data["seed"]),
            target_latency=None if target is None else float(target),
            final_temperature=float(data["final_temperature"]),
            expected_cost=float(data["expected_cost"]),
            argmax=DerivedArchitecture.from_dict(data["argmax"]),
            samples=tuple(DerivedArchitecture.from_dict(item) for item in data["samples"]),
            probabilities=tuple(
                tuple(float(value) for value in row) for row in data["probabilities"]
            ),
            within_target=None if data.get("within_target") is None
            else DerivedArchitecture.from_dict(data["within_target"]),
        )

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> SearchResult:
        return cls.from_dict(read_json(path, "search result"))


def derive_argmax(
    space: LayerwiseSpace, probabilities: np.ndarray, cost_model: CostModel
) -> DerivedArchitecture:
    """The most probable architecture: ``argmax_i P_theta(b_l = i)`` at every layer."""
    probabilities = _checked_probabilities(space, probabilities)
    return derived(space, probabilities, cost_model, tuple(probabilities.argmax(axis=1)), 1)


def derive_samples(
    space: LayerwiseSpace,
    probabilities: np.ndarray,
    cost_model: CostModel,
    *,
    num_samples: int,
    rng: np.random.Generator,
) -> tuple[DerivedArchitecture, ...]:
    """``num_samples`` draws from ``P_theta``, de-duplicated, ranked by (cost, -log P)."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise HwnasError(f"num_samples must be a non-negative integer, got {num_samples!r}")
    probabilities = _checked_probabilities(space, probabilities)
    cumulative = probabilities.cumsum(axis=1)
    draws = rng.random((num_samples, space.num_layers))
    # Inverse-CDF sampling per layer; the min() guards a cumulative sum that ends below 1.
    indices = np.minimum(
        (draws[:, :, None] > cumulative[None, :, :]).sum(axis=2), space.num_candidates - 1
    )
    counts: dict[tuple[int, ...], int] = {}
    for row in indices:
        choices = tuple(int(index) for index in row)
        counts[choices] = counts.get(choices, 0) + 1
    found = [derived(space, probabilities, cost_model, choices, count)
             for choices, count in counts.items()]
    return tuple(sorted(found, key=lambda item: (item.cost, -item.log_probability)))


def derive_within_target(
    space: LayerwiseSpace,
    probabilities: np.ndarray,
    costs: LayerCostMatrix,
    target: float,
    cost_model: CostModel,
    *,
    lower: float | None = None,
    bins: int = 4000,
) -> DerivedArchitecture | None:
    """``argmax_a log P_theta(a)`` subject to ``lower <= cost(a) <= target``, with
    ``cost(a) = costs.constant + sum_l costs[l, a_l]`` (no lower bound when ``lower`` is None);
    :func:`most_probable_within` solves it. Candidates of probability 0 (fixed layers) are never
    chosen. None when no network fits."""
    probabilities = _checked_probabilities(space, probabilities)
    found = most_probable_within(np.log(np.maximum(probabilities, PROBABILITY_FLOOR)),
                                 costs.matrix, probabilities > 0, costs.constant, target,
                                 lower=lower, bins=bins)
    return None if found is None else derived(space, probabilities, cost_model, found[0], 1)


def most_probable_within(
    log_probabilities: np.ndarray,
    matrix: Any,
    allowed: np.ndarray,
    constant: float,
    target: float,
    *,
    lower: float | None = None,
    bins: int = 4000,
) -> tuple[tuple[int, ...], float] | None:
    """``(choices, log P)`` maximising ``sum_l log_probabilities[l, a_l]`` over the ``allowed``
    candidates subject to ``lower <= constant + sum_l matrix[l, a_l] <= target``.

    A multiple-choice knapsack solved by dynamic programming over the cost above the cheapest
    network, cut into ``bins`` steps; each candidate's extra cost is rounded *up* to whole steps,
    so the answer never exceeds ``target`` (it may miss a network within one step per layer of a
    bound). None when nothing fits.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    num_layers = matrix.shape[0]
    cheapest = np.where(allowed, matrix, np.inf).min(axis=1)
    slack = target - constant - cheapest.sum()
    if not np.isfinite(slack) or slack < 0:
        return None
    step = slack / bins if slack > 0 else 1.0
    extra = np.where(allowed, np.ceil((matrix - cheapest[:, None]) / step - 1e-9), bins + 1)
    extra = np.clip(extra, 0, bins + 1).astype(int)
    value = np.full(bins + 1, -np.inf)  # best log P of the layers so far at exactly b steps
    value[0] = 0.0
    choice = np.zeros((num_layers, bins + 1), dtype=int)
    for layer in range(num_layers):
        best = np.full(bins + 1, -np.inf)
        for candidate in np.flatnonzero(allowed[layer]):
            shift = extra[layer, candidate]
            if shift > bins:
                continue
            option = np.full(bins + 1, -np.inf)
            option[shift:] = value[:bins + 1 - shift] + log_probabilities[layer, candidate]
            better = option > best
            best[better], choice[layer, better] = option[better], candidate
        value = best
    first = 0 if lower is None else max(0, int(np.ceil((lower - target) / step)) + bins)
    if first > bins or not np.isfinite(value[first:]).any():
        return None
    budget_left = first + int(np.argmax(value[first:]))
    total, choices = float(value[budget_left]), []
    for layer in reversed(range(num_layers)):
        candidate = int(choice[layer, budget_left])
        choices.append(candidate)
        budget_left -= extra[layer, candidate]
    return tuple(reversed(choices)), total


def derived(space: Any, probabilities: np.ndarray, cost_model: CostModel,
            choices: Sequence[int], count: int) -> DerivedArchitecture:
    """The :class:`DerivedArchitecture` of one option per decision (row of ``P_theta``)."""
    choices = tuple(int(choice) for choice in choices)
    arch = space.to_arch(choices)
    log_probability = float(sum(math.log(max(probabilities[row, choice], PROBABILITY_FLOOR))
                                for row, choice in enumerate(choices)))
    return DerivedArchitecture(
        arch=arch.to_string(),
        choices=choices,
        cost=float(cost_model.cost(arch)),
        log_probability=log_probability,
        count=count,
    )


def _checked_probabilities(space: LayerwiseSpace, probabilities: Any) -> np.ndarray:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    expected = (space.num_layers, space.num_candidates)
    if probabilities.shape != expected:
        raise HwnasError(f"probabilities have shape {probabilities.shape}, expected {expected}")
    if not np.all(np.isfinite(probabilities)) or np.any(probabilities < 0):
        raise HwnasError("probabilities must be finite and non-negative")
    return probabilities


def _fields_of(cls: type, data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise HwnasError(f"{what}: expected an object, got {data!r}")
    names = [name for name in cls.__dataclass_fields__]
    optional = [name for name, spec in cls.__dataclass_fields__.items()
                if spec.default is not MISSING]
    missing = [name for name in names if name not in data and name not in optional]
    if missing:
        raise HwnasError(f"{what}: missing field '{missing[0]}'")
    extra = [key for key in data if key not in names]
    if extra:
        raise HwnasError(f"{what}: unknown field '{extra[0]}'")
    return data
