"""Training loop: a known-answer run on separable data, bitwise resume, safe checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from hwnas.arch.spec import ArchSpec
from hwnas.data.batches import BatchIterator
from hwnas.data.cifar import CifarArrays
from hwnas.errors import HwnasError
from hwnas.train.loop import CHECKPOINT_NAME, TrainProgress, evaluate, load_checkpoint, train
from hwnas.train.recipe import TrainRecipe

TINY_ARCH = ArchSpec.from_string(
    "r32:stem_k3_c8_s2:ir_k3_e1_c8_s1:ir_k3_e3_c16_s2:skip_c16_s1:head_c32_n10_d0.2"
)
# Ten well separated colours: the class is readable from any crop of the image.
PALETTE = np.array([[r, g, b] for r in (30, 220) for g in (30, 220) for b in (30, 130, 220)][:10])


def _colour_data(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), per_class)
    noise = rng.integers(-25, 26, (len(labels), 32, 32, 3))
    images = np.clip(PALETTE[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)
    return images, labels


def _dataset(per_class: int = 24) -> CifarArrays:
    train_x, train_y = _colour_data(per_class, seed=1)
    test_x, test_y = _colour_data(10, seed=2)
    return CifarArrays(train_x, train_y, test_x, test_y, tuple(f"c{i}" for i in range(10)),
                       "synthetic colours")


def test_separable_data_is_learned(tmp_path):
    result = train(TINY_ARCH, _dataset(), TrainRecipe(epochs=8, batch_size=16, seed=0, threads=1),
                   tmp_path / "run")
    assert result.final_top1 >= 95.0, result.history
    assert result.history[0]["test_top1"] < result.final_top1  # it learned during the run


class _Interrupt(Exception):
    pass


class _KillAfterFirstEpoch(TrainProgress):
    def epoch_done(self, record):
        raise _Interrupt  # as if the process were killed right after the checkpoint


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    data, recipe = _dataset(12), TrainRecipe(epochs=2, batch_size=16, seed=3, threads=1)
    straight = train(TINY_ARCH, data, recipe, tmp_path / "straight")
    with pytest.raises(_Interrupt):
        train(TINY_ARCH, data, recipe, tmp_path / "resumed", progress=_KillAfterFirstEpoch())
    assert load_checkpoint(tmp_path / "resumed")["epoch"] == 1
    resumed = train(TINY_ARCH, data, recipe, tmp_path / "resumed", resume=True)
    first = load_checkpoint(tmp_path / "straight")["model"]
    second = load_checkpoint(tmp_path / "resumed")["model"]
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    assert resumed.final_top1 == straight.final_top1
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]
    lines = (tmp_path / "resumed" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_run_directory_and_weights_only_checkpoint(tmp_path):
    run = tmp_path / "run"
    recipe = TrainRecipe(epochs=2, batch_size=16, seed=0, threads=1, eval_every=2)
    result = train(TINY_ARCH, _dataset(4), recipe, run)
    state = torch.load(run / CHECKPOINT_NAME, weights_only=True)  # no pickled objects inside
    assert ArchSpec.from_json(state["arch"]) == TINY_ARCH
    assert state["epoch"] == 2 and isinstance(state["torch_rng"], torch.Tensor)
    config = json.loads((run / "config.json").read_text())
    assert config["arch"] == TINY_ARCH.to_string() and config["recipe"] == recipe.to_dict()
    assert config["data"]["train_images"] == 40
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [r["test_top1"] is None for r in history] == [True, False]  # eval_every=2
    assert set(history[0]) == {"epoch", "loss", "train_acc", "lr", "test_top1", "seconds"}
    saved = json.loads((run / "result.json").read_text())
    assert saved["final_top1"] == result.final_top1 == history[-1]["test_top1"]
    assert saved["arch"] == TINY_ARCH.to_string() and saved["epochs"] == 2


def test_existing_run_is_not_overwritten_and_resume_checks_the_recipe(tmp_path):
    data = _dataset(4)
    recipe = TrainRecipe(epochs=1, batch_size=16, threads=1)
    train(TINY_ARCH, data, recipe, tmp_path)
    with pytest.raises(HwnasError, match="already holds a train run"):
        train(TINY_ARCH, data, recipe, tmp_path)
    with pytest.raises(HwnasError, match="'recipe.lr' differs"):
        train(TINY_ARCH, data, TrainRecipe(epochs=1, batch_size=16, lr=0.02), tmp_path,
              resume=True)
    with pytest.raises(HwnasError, match="data differ"):
        train(TINY_ARCH, _dataset(5), recipe, tmp_path, resume=True)
    with pytest.raises(HwnasError, match="nothing to resume"):
        train(TINY_ARCH, data, recipe, tmp_path / "empty", resume=True)


class _AlwaysClassZero(nn.Module):
    def forward(self, images):
        logits = torch.zeros(len(images), 10)
        logits[:, 0] = 1
        return logits


def test_evaluate_counts_top1_exactly():
    labels = np.array([0, 0, 0, 1, 2, 3, 4, 5])  # 3 of 8 are class 0
    images = np.zeros((8, 32, 32, 3), np.uint8)
    top1 = evaluate(_AlwaysClassZero(), BatchIterator(images, labels, 3, train=False))
    assert top1 == pytest.approx(37.5)
