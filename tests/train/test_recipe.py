"""The training recipe: validation and the warm-up + cosine learning-rate formula."""

from __future__ import annotations

import math

import pytest

from hwnas.errors import HwnasError
from hwnas.train.recipe import TrainRecipe, learning_rate


def test_cosine_schedule_known_values():
    recipe = TrainRecipe(epochs=4, lr=0.2, warmup_fraction=0.0)
    steps = 10  # per epoch, 40 in all
    assert learning_rate(recipe, 0, steps) == pytest.approx(0.2)
    assert learning_rate(recipe, 20, steps) == pytest.approx(0.1)  # half way: cos(pi/2) = 0
    assert learning_rate(recipe, 10, steps) == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)))
    assert learning_rate(recipe, 39, steps) < 0.001
    rates = [learning_rate(recipe, step, steps) for step in range(40)]
    assert rates == sorted(rates, reverse=True)


def test_warmup_is_linear_then_cosine_from_the_peak():
    recipe = TrainRecipe(epochs=3, lr=0.1, warmup_fraction=1 / 3)
    steps = 4  # 12 in all, the first 4 warm up
    assert [learning_rate(recipe, s, steps) for s in range(4)] == pytest.approx(
        [0.025, 0.05, 0.075, 0.1]
    )
    assert learning_rate(recipe, 4, steps) == pytest.approx(0.1)
    assert learning_rate(recipe, 8, steps) == pytest.approx(0.05)


def test_round_trip_and_validation():
    recipe = TrainRecipe(epochs=3, label_smoothing=0.1, seed=4)
    assert TrainRecipe.from_dict(recipe.to_dict()) == recipe
    with pytest.raises(HwnasError, match="unknown setting 'learning_rate'"):
        TrainRecipe.from_dict({"epochs": 2, "learning_rate": 0.1})
    bad = [
        ({"epochs": 0}, "epochs"), ({"batch_size": 1.5}, "batch_size"), ({"lr": 0}, "lr"),
        ({"lr": float("nan")}, "lr"), ({"momentum": 1.0}, "momentum"),
        ({"label_smoothing": 1.0}, "label_smoothing"), ({"weight_decay": -1e-4}, "weight_decay"),
        ({"warmup_fraction": 1.0}, "warmup_fraction"), ({"seed": -1}, "seed"),
        ({"nesterov": True, "momentum": 0.0}, "nesterov"), ({"grad_clip_norm": -1.0}, "grad_clip"),
        ({"threads": 0}, "threads"), ({"subset_per_class": 0}, "subset_per_class"),
    ]
    for fields, name in bad:
        with pytest.raises(HwnasError, match=name):
            TrainRecipe(**fields)
    with pytest.raises(TypeError):
        TrainRecipe(5)  # keyword-only
