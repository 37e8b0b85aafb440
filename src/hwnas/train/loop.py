"""Training from scratch: ``train_one_epoch``, ``evaluate`` and a resumable ``train``.

Plain functions in the style of torchvision's classification references. :func:`train` builds
the network from its :class:`ArchSpec`, trains it with the :class:`TrainRecipe` (SGD, cosine LR,
crop + flip), evaluates top-1 on the test split, and keeps a run folder (:mod:`hwnas.runs`)::

    config.json      arch, recipe, data summary, threads, versions (written at the start)
    history.jsonl    one line per finished epoch (appended): loss, train_acc, test_top1, lr
    checkpoint.pt    the state after the last finished epoch (written atomically each epoch)
    result.json      final/best top-1, epochs, wall time, arch string (written at the end)

The checkpoint holds only tensors and primitive containers (state dicts, ints, floats, JSON
strings), so it loads with ``torch.load(..., weights_only=True)`` and never unpickles code.
A run killed at any point and restarted with ``resume=True`` continues from the last finished
epoch and ends with the same weights as an uninterrupted run (on the same machine and thread
count, which fix the float reduction order): the LR is a function of the step, the batch order a
function of ``(seed, epoch)``, and the global torch RNG (dropout) is saved.
"""

from __future__ import annotations

import io
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

import hwnas
from hwnas import settings
from hwnas.compute import free_cores, torch_threads
from hwnas.arch.build import build_model
from hwnas.arch.spec import ArchSpec
from hwnas.data.batches import BatchIterator
from hwnas.data.cifar import CifarArrays
from hwnas.errors import HwnasError
from hwnas.io import atomic_write_bytes
from hwnas.runs import RunFolder, first_difference, open_run
from hwnas.train.recipe import TrainRecipe, learning_rate

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "hwnas.train.checkpoint/1"


class TrainProgress:
    """Hooks :func:`train` calls as it goes; the defaults do nothing (the CLI draws rich bars)."""

    def epoch_started(self, epoch: int, epochs: int, batches: int) -> None:
        """``epoch`` is 1-based, ``batches`` the number of training steps it will take."""

    def batch_done(self, loss: float) -> None:
        """One optimiser step finished with this mini-batch loss."""

    def epoch_done(self, record: Mapping[str, Any]) -> None:
        """An epoch finished and its checkpoint and history line are on disk."""


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns and writes to ``result.json`` (top-1 in percent)."""

    run_dir: Path
    arch: str
    final_top1: float
    best_top1: float
    best_epoch: int
    epochs: int
    wall_seconds: float
    history: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch, "final_top1": self.final_top1, "best_top1": self.best_top1,
            "best_epoch": self.best_epoch, "epochs": self.epochs,
            "wall_seconds": self.wall_seconds,
        }


def make_optimizer(model: nn.Module, recipe: TrainRecipe) -> torch.optim.SGD:
    """SGD with weight decay on conv/linear weights only (BatchNorm and biases are not decayed)."""
    decayed = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    exempt = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decayed, "weight_decay": recipe.weight_decay},
              {"params": exempt, "weight_decay": 0.0}]
    return torch.optim.SGD(
        groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov
    )


def train_one_epoch(
    model: nn.Module,
    iterator: BatchIterator,
    optimizer: torch.optim.Optimizer,
    *,
    recipe: TrainRecipe,
    epoch: int,
    progress: TrainProgress | None = None,
) -> dict[str, float]:
    """One pass over ``iterator`` (0-based ``epoch``): mean loss, train accuracy %, first LR."""
    model.train()
    iterator.set_epoch(epoch)
    steps = len(iterator)
    loss_sum, correct, seen, first_lr = 0.0, 0, 0, None
    for index, (images, labels) in enumerate(iterator):
        rate = learning_rate(recipe, epoch * steps + index, steps)
        first_lr = rate if first_lr is None else first_lr
        for group in optimizer.param_groups:
            group["lr"] = rate
        logits = model(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=recipe.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.grad_clip_norm:
            nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip_norm)
        optimizer.step()
        batch_loss = loss.item()
        if math.isnan(batch_loss):  # training diverged: say so instead of going on
            raise HwnasError(f"training diverged: loss is NaN in epoch {epoch + 1} step {index}")
        loss_sum += batch_loss * len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        seen += len(labels)
        if progress is not None:
            progress.batch_done(batch_loss)
    return {"loss": loss_sum / seen, "train_acc": 100.0 * correct / seen, "lr": first_lr}


@torch.inference_mode()
def evaluate(model: nn.Module, iterator: BatchIterator) -> float:
    """Top-1 accuracy of ``model`` on all batches of ``iterator``, in percent (eval mode)."""
    model.eval()
    correct, seen = 0, 0
    for images, labels in iterator:
        correct += int((model(images).argmax(1) == labels).sum())
        seen += len(labels)
    return 100.0 * correct / seen


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` into memory, then an atomic write: a kill never leaves half a checkpoint."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a training checkpoint with ``weights_only=True``; a run dir means its checkpoint."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise HwnasError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or unsafe files
        raise HwnasError(f"cannot load checkpoint {path}: {error}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise HwnasError(f"{path} is not an hwnas training checkpoint ({CHECKPOINT_FORMAT})")
    return state


def model_from_checkpoint(state: Mapping[str, Any]) -> nn.Module:
    """Rebuild the network stored in a checkpoint and load its weights (eval mode)."""
    model = build_model(ArchSpec.from_json(state["arch"]))
    model.load_state_dict(state["model"])
    return model.eval()


def run_config(arch: ArchSpec, recipe: TrainRecipe, data: CifarArrays,
               channels_last: bool) -> dict[str, Any]:
    """What ``config.json`` records; a resume must match the architecture and the recipe
    (its compared settings), the checkpoint the data (:func:`_check_data`)."""
    return {"arch": arch.to_string(), "arch_spec": arch.to_dict(), "recipe": recipe.to_dict(),
            "data": data.describe(), "channels_last": channels_last,
            "torch_version": torch.__version__, "hwnas_version": hwnas.__version__}


def same_training(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    return first_difference(saved.get("arch"), current["arch"], "arch") or \
        settings.resume_difference(TrainRecipe, saved.get("recipe"), current["recipe"],
                                   "recipe")


def _check_data(state: Mapping[str, Any], fingerprint: str) -> None:
    if state["data_fingerprint"] != fingerprint:
        raise HwnasError("cannot resume: the training/test data differ from the checkpoint's")


def _checkpoint_state(arch: ArchSpec, recipe: TrainRecipe, fingerprint: str, model: nn.Module,
                      optimizer: torch.optim.Optimizer, history: list[dict[str, Any]],
                      wall_seconds: float) -> dict[str, Any]:
    """Everything a resume needs, as tensors, numbers and JSON strings only (weights_only-safe).

    The global torch RNG state is saved because dropout draws from it; the batch order and
    augmentation need no state (they derive from ``(seed, epoch)``), nor does the LR (the step).
    """
    return {
        "format": CHECKPOINT_FORMAT, "arch": arch.to_json(),
        "recipe": json.dumps(recipe.to_dict()), "data_fingerprint": fingerprint,
        "epoch": len(history), "model": dict(model.state_dict()),
        "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
        "history": json.dumps(history), "wall_seconds": wall_seconds,
    }


def _result(run_dir: Path, arch: ArchSpec, history: list[dict[str, Any]],
            wall_seconds: float) -> TrainResult:
    evaluated = [record for record in history if record["test_top1"] is not None]
    best = max(evaluated, key=lambda record: record["test_top1"])
    return TrainResult(
        run_dir=run_dir, arch=arch.to_string(), final_top1=evaluated[-1]["test_top1"],
        best_top1=best["test_top1"], best_epoch=best["epoch"], epochs=len(history),
        wall_seconds=wall_seconds, history=tuple(history),
    )


def train(
    arch: ArchSpec,
    data: CifarArrays,
    recipe: TrainRecipe,
    run_dir: str | Path,
    *,
    resume: bool = False,
    channels_last: bool = True,
    progress: TrainProgress | None = None,
) -> TrainResult:
    """Train ``arch`` from scratch on ``data.train_*``, evaluating top-1 on ``data.test_*``
    (the caller selects the subsets; ``recipe.subset_per_class`` & co. record them).

    ``recipe.threads`` sets ``torch.set_num_threads`` for the run (restored afterwards; None:
    the cores other processes leave free, :func:`hwnas.compute.free_cores`). Test
    top-1 is measured every ``recipe.eval_every`` epochs and after the last; ``best_top1`` is
    the best of those (it peeks at the test split, so report ``final_top1``). ``run_dir`` is a
    run folder (:mod:`hwnas.runs`); ``resume=True`` continues its run from ``checkpoint.pt``
    (from the start if it stopped before its first epoch ended).
    """
    folder = open_run(run_dir, command="train", resume=resume, compare=same_training,
                      config=run_config(arch, recipe, data, channels_last))
    try:
        with torch_threads(recipe.threads or free_cores()), \
                torch.random.fork_rng(devices=[]):
            return _train(arch, data, recipe, folder, channels_last, progress)
    finally:
        folder.close()


def _train(arch: ArchSpec, data: CifarArrays, recipe: TrainRecipe, folder: RunFolder,
           channels_last: bool, progress: TrainProgress | None) -> TrainResult:
    fingerprint = data.fingerprint()
    torch.manual_seed(recipe.seed)  # the initial weights; the global RNG also drives dropout
    model = build_model(arch)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = make_optimizer(model, recipe)
    train_batches = BatchIterator(data.train_x, data.train_y, recipe.batch_size, train=True,
                                  seed=recipe.seed, channels_last=channels_last)
    test_batches = BatchIterator(data.test_x, data.test_y, recipe.eval_batch_size, train=False,
                                 channels_last=channels_last)
    history: list[dict[str, Any]] = []
    first_epoch, wall_seconds = 0, 0.0
    if folder.checkpoint_path.exists():
        state = load_checkpoint(folder.checkpoint_path)
        _check_data(state, fingerprint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        first_epoch, wall_seconds = state["epoch"], state["wall_seconds"]
        history = json.loads(state["history"])
        folder.rewrite_history(history)
        logger.info("resuming %s after epoch %d of %d", folder.root, first_epoch, recipe.epochs)
    for epoch in range(first_epoch, recipe.epochs):
        if progress is not None:
            progress.epoch_started(epoch + 1, recipe.epochs, len(train_batches))
        started = time.perf_counter()
        metrics = train_one_epoch(model, train_batches, optimizer, recipe=recipe, epoch=epoch,
                                  progress=progress)
        last = epoch + 1 == recipe.epochs
        evaluated = last or (epoch + 1) % recipe.eval_every == 0
        top1 = evaluate(model, test_batches) if evaluated else None
        seconds = time.perf_counter() - started
        wall_seconds += seconds
        history.append({"epoch": epoch + 1, **metrics, "test_top1": top1, "seconds": seconds})
        save_checkpoint(folder.checkpoint_path, _checkpoint_state(
            arch, recipe, fingerprint, model, optimizer, history, wall_seconds))
        folder.append_history(history[-1:])
        logger.info("epoch %d/%d %s", epoch + 1, recipe.epochs, history[-1])
        if progress is not None:
            progress.epoch_done(history[-1])
    result = _result(folder.root, arch, history, wall_seconds)
    folder.write_result({
        **result.to_dict(), "parameters": sum(p.numel() for p in model.parameters()),
        "train_images": int(len(data.train_y)), "test_images": int(len(data.test_y)),
    })
    return result
