"""Does a supernet rank architectures? Diagnostics of a finished FBNet search.

DNAS trades accuracy against latency only as well as the supernet's loss tells paths apart: theta's
accuracy gradient is, in expectation, the difference in cross-entropy that a candidate makes to
the paths it is part of. Three measurements show how much of that signal a supernet holds:

1. **Path losses on fixed images.** The CE of many paths on the *same* images, with BatchNorm on
   batch statistics as the theta step compares paths (``hwnas.dnas.steps``), so batch-to-batch
   noise cancels and the spread between paths is what the architecture makes.
2. **Additive per-candidate effects.** A ridge fit of ``CE(a) ~ c + sum_l e[l, a_l]`` on the
   one-hot choices (scikit-learn) with its cross-validated R^2. When R^2 is high, ``e`` is what
   theta's REINFORCE gradient estimates (``E_theta[CE] = c + sum_{l,i} p_{l,i} e[l, i]``), and
   ``e`` can be compared with what stand-alone training says about capacity.
3. **Ranking against stand-alone training**: Kendall tau between the supernet's accuracy of
   trained networks (the named paths) and their top-1 after training
   (docs/studies/dnas-device-fit.md).
4. **Are the searched blocks used at all?** The mean |scale| of the last BN of every residual
   candidate (:func:`residual_scales`): it starts at 0 ("zero-gamma", each block the identity),
   and a block whose scale stays near 0 adds almost nothing to any path.

Weight-sharing supernets are known to rank stand-alone accuracy poorly (Yu et al., "Evaluating
the search phase of neural architecture search", ICLR 2020, measured Kendall tau near 0 on their
spaces); these functions measure it for one of ours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.preprocessing import OneHotEncoder

from hwnas.cost.flops import FlopsCost
from hwnas.dnas.supernet import SuperNet
from hwnas.errors import HwnasError


def fixed_test_images(data: Any, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` class-balanced test images of ``data`` (:class:`hwnas.data.cifar.CifarArrays`;
    rounded down to whole classes, at least one per class), normalised as the search's batches."""
    from hwnas.data.batches import BatchIterator

    subset = data.subset(train_per_class=1, test_per_class=max(1, count // 10),
                         rng=np.random.default_rng(seed))
    (images, labels), = BatchIterator(subset.test_x, subset.test_y, len(subset.test_y),
                                      train=False)
    return images, labels


def uniform_path(num_layers: int, candidate: int, fixed: Mapping[int, int]) -> tuple[int, ...]:
    """The path with ``candidate`` at every layer not in ``fixed`` (e.g. the all-skip path)."""
    return tuple(fixed.get(layer, candidate) for layer in range(num_layers))


def random_paths(
    num_layers: int, num_candidates: int, fixed: Mapping[int, int], count: int,
    rng: np.random.Generator,
) -> list[tuple[int, ...]]:
    """``count`` paths drawn uniformly over the candidates of every layer not in ``fixed``
    (``{layer: candidate}``, e.g. the unsearched transition layers)."""
    return [
        tuple(fixed.get(layer, int(rng.integers(num_candidates))) for layer in range(num_layers))
        for _ in range(count)
    ]


@dataclass(frozen=True)
class PathLosses:
    """Per path: mean cross-entropy and top-1 accuracy (fraction) on the same images."""

    cross_entropy: np.ndarray
    accuracy: np.ndarray


def path_losses(
    supernet: SuperNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    paths: Sequence[Sequence[int]],
    *,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> PathLosses:
    """CE and accuracy of every path of ``supernet`` on ``images`` (already normalised, in the
    supernet's memory format), in batches of ``batch_size`` with BatchNorm on batch statistics,
    as the search compares paths. The supernet's state (BN running statistics, train/eval mode)
    is restored afterwards."""
    if len(images) != len(labels) or len(images) == 0:
        raise HwnasError(f"need as many labels as images (got {len(images)} images, "
                         f"{len(labels)} labels)")
    saved_state = {key: value.clone() for key, value in supernet.state_dict().items()}
    was_training = supernet.training
    num_layers, num_candidates = supernet.theta.shape
    cross_entropy, accuracy = [], []
    supernet.train()
    try:
        with torch.no_grad():
            for done, path in enumerate(paths):
                if len(path) != num_layers:
                    raise HwnasError(f"path {tuple(path)} has {len(path)} choices; the supernet "
                                     f"has {num_layers} layers")
                one_hot = torch.zeros(num_layers, num_candidates)
                one_hot[torch.arange(num_layers), torch.as_tensor(path)] = 1.0
                loss_sum, correct = 0.0, 0
                for start in range(0, len(images), batch_size):
                    output = supernet(images[start:start + batch_size], one_hot, list(path))
                    batch_labels = labels[start:start + batch_size]
                    loss_sum += F.cross_entropy(output, batch_labels, reduction="sum").item()
                    correct += int((output.argmax(dim=1) == batch_labels).sum())
                cross_entropy.append(loss_sum / len(images))
                accuracy.append(correct / len(images))
                if progress is not None:
                    progress(done + 1)
    finally:
        supernet.load_state_dict(saved_state)
        supernet.train(was_training)
    return PathLosses(np.array(cross_entropy), np.array(accuracy))


@dataclass(frozen=True)
class AdditiveEffects:
    """``CE(a) ~ intercept + sum_l effects[l, a_l]``, each layer's effects centred on their mean
    over the candidates that were sampled (unsampled candidates: NaN)."""

    intercept: float
    effects: np.ndarray
    cross_validated_r2: float
    loss_sd: float
    residual_sd: float
    split_half_correlation: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "intercept": self.intercept,
            "effects": [[None if np.isnan(value) else float(value) for value in row]
                        for row in self.effects],
            "cross_validated_r2": self.cross_validated_r2,
            "loss_sd": self.loss_sd,
            "residual_sd": self.residual_sd,
            "split_half_correlation": self.split_half_correlation,
        }


def fit_additive(
    paths: Sequence[Sequence[int]],
    losses: Sequence[float],
    num_candidates: int,
    *,
    ridge: float = 1e-3,
    folds: int = 5,
    seed: int = 0,
) -> AdditiveEffects:
    """Fit the additive model of the module docstring (item 2) by ridge regression on one-hot
    choices. ``cross_validated_r2``: R^2 of ``folds``-fold out-of-fold predictions;
    ``split_half_correlation``: correlation of the effects fitted on two random halves of the
    paths (how reproducible they are)."""
    choices = np.asarray(paths, dtype=int)
    targets = np.asarray(losses, dtype=float)
    if choices.ndim != 2 or len(choices) != len(targets) or len(targets) < 2 * folds:
        raise HwnasError(f"need at least {2 * folds} paths with one loss each, got "
                         f"{len(choices)} paths and {len(targets)} losses")
    encoder = OneHotEncoder(categories=[list(range(num_candidates))] * choices.shape[1],
                            handle_unknown="error", sparse_output=False)
    features = encoder.fit_transform(choices)
    model = Ridge(alpha=ridge)
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(model, features, targets, cv=splitter)
    total = float(((targets - targets.mean()) ** 2).sum())
    r2 = 1.0 - float(((targets - predicted) ** 2).sum()) / total if total > 0 else float("nan")
    model.fit(features, targets)
    effects = _centred(model.coef_.reshape(choices.shape[1], num_candidates), choices)
    halves = np.random.default_rng(seed).permutation(len(targets))
    first, second = (
        _centred(Ridge(alpha=ridge).fit(features[half], targets[half]).coef_.reshape(
            effects.shape), choices[half])
        for half in (halves[: len(halves) // 2], halves[len(halves) // 2:])
    )
    both = ~np.isnan(first) & ~np.isnan(second) & (np.ptp(choices, axis=0) > 0)[:, None]
    correlation = (float(np.corrcoef(first[both], second[both])[0, 1]) if both.sum() > 2
                   else float("nan"))
    return AdditiveEffects(
        intercept=float(model.intercept_), effects=effects, cross_validated_r2=r2,
        loss_sd=float(targets.std()), residual_sd=float((targets - predicted).std()),
        split_half_correlation=correlation,
    )


def _centred(coefficients: np.ndarray, choices: np.ndarray) -> np.ndarray:
    """Each layer's coefficients minus their mean over its sampled candidates; NaN elsewhere."""
    sampled = np.zeros(coefficients.shape, dtype=bool)
    for layer in range(coefficients.shape[0]):
        sampled[layer, np.unique(choices[:, layer])] = True
    centred = np.where(sampled, coefficients, np.nan)
    return centred - np.nanmean(centred, axis=1, keepdims=True)


def signal_report(
    supernet: SuperNet,
    paths: Sequence[Sequence[int]],
    images: tuple[torch.Tensor, torch.Tensor],
    named_paths: Mapping[str, Sequence[int]],
    named_images: tuple[torch.Tensor, torch.Tensor],
    *,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Items 1 and 2 of the module docstring for ``paths`` on ``images``, and the CE and accuracy
    of each of ``named_paths`` on ``named_images`` (e.g. the all-skip path, trained networks)."""
    space = supernet.space
    random = path_losses(supernet, *images, paths, progress=progress)
    fit = fit_additive(paths, random.cross_entropy, len(space.candidates))
    named = path_losses(supernet, *named_images, list(named_paths.values()))
    flops = FlopsCost().layer_cost_matrix(space).matrix
    return {
        "paths": len(paths),
        "path_cross_entropy": _summary(random.cross_entropy),
        "path_accuracy": _summary(random.accuracy),
        "additive_fit": {key: value for key, value in fit.to_dict().items() if key != "effects"},
        "mean_effect_by_candidate": {
            name: float(np.mean(column)) for name, column in
            zip(space.candidates, fit.effects[~np.isnan(fit.effects).any(axis=1)].T)},
        "effect_range_by_layer": (np.nanmax(fit.effects, axis=1)
                                  - np.nanmin(fit.effects, axis=1)).tolist(),
        "effect_vs_mflops_spearman": capacity_preference(fit.effects, flops),
        "residual_scale_by_layer": _layer_means(residual_scales(supernet)),
        "supernet_accuracy": dict(zip(named_paths, named.accuracy.tolist())),
        "supernet_cross_entropy": dict(zip(named_paths, named.cross_entropy.tolist())),
    }


def residual_scales(supernet: SuperNet) -> np.ndarray:
    """[L, K] mean |last BN scale| of every residual candidate, NaN where a candidate has no
    residual (skip, or a layer that changes width or stride)."""
    return np.array([[np.nan if scale is None else scale
                      for scale in (layer.residual_scale(index)
                                    for index in range(len(supernet.space.candidates)))]
                     for layer in supernet.layers])


def _layer_means(values: np.ndarray) -> list[float | None]:
    """Row means ignoring NaN; None for an all-NaN row (JSON has no NaN)."""
    return [None if np.isnan(row).all() else float(np.nanmean(row)) for row in values]


def capacity_preference(effects: np.ndarray, flops: np.ndarray) -> dict[str, Any]:
    """Spearman rho, per layer where every candidate was sampled, between a candidate's CE
    effect and its MFLOPs (``flops`` [L, K]): -1 means more compute always lowers the supernet's
    CE, 0 that compute does not matter. Empty when no layer had every candidate sampled."""
    from scipy.stats import spearmanr

    rhos = [float(spearmanr(effects[layer], flops[layer]).statistic)
            for layer in range(len(effects)) if not np.isnan(effects[layer]).any()]
    if not rhos:
        return {}
    return {"mean": float(np.mean(rhos)), "min": float(np.min(rhos)),
            "max": float(np.max(rhos)), "per_layer": rhos}


def _summary(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()), "sd": float(values.std()),
            "min": float(values.min()), "max": float(values.max())}
