"""Training from scratch: ``train_one_epoch``, ``evaluate`` and a resumable ``train``.

Plain functions in the style of torchvision's classification references. :func:`train` builds
the network from its :class:`ArchSpec`, trains it with the :class:`TrainRecipe` (SGD, cosine LR,
crop + flip), evaluates top-1 on the test split, and keeps a run directory::

    config.json      arch, recipe, data summary, threads, versions (written at the start)
    history.jsonl    one line per finished epoch: loss, train_acc, test_top1, lr, seconds
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
from hwnas.arch.build import build_model
from hwnas.arch.spec import ArchSpec
from hwnas.data.batches import BatchIterator
from hwnas.data.cifar import CifarArrays
from hwnas.errors import HwnasError
from hwnas.io import atomic_write_bytes, atomic_write_json, atomic_write_text
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
        if recipe.grad_clip_norm is not None:
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


def _check_resumable(state: Mapping[str, Any], arch: ArchSpec, recipe: TrainRecipe,
                     fingerprint: str) -> None:
    stored_arch = ArchSpec.from_json(state["arch"])
    if stored_arch != arch:
        raise HwnasError(
            f"cannot resume: the checkpoint trains {stored_arch.to_string()}, "
            f"not {arch.to_string()}"
        )
    stored_recipe = TrainRecipe.from_dict(json.loads(state["recipe"]))
    if stored_recipe != recipe:
        changed = sorted(k for k, v in recipe.to_dict().items() if stored_recipe.to_dict()[k] != v)
        raise HwnasError(
            f"cannot resume: recipe differs from the checkpoint in {', '.join(changed)}"
        )
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


def _write_history(run_dir: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(run_dir / "history.jsonl", "".join(json.dumps(r) + "\n" for r in history))


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
    threads: int | None = None,
    channels_last: bool = True,
    eval_every: int = 1,
    config_extra: Mapping[str, Any] | None = None,
    progress: TrainProgress | None = None,
) -> TrainResult:
    """Train ``arch`` from scratch on ``data.train_*``, evaluating top-1 on ``data.test_*``.

    ``threads`` sets ``torch.set_num_threads`` for the run (restored afterwards). Test top-1 is
    measured every ``eval_every`` epochs and after the last; ``best_top1`` is the best of those
    (it peeks at the test split, so report ``final_top1``). ``resume=True`` continues from
    ``run_dir/checkpoint.pt`` if present (the arch, recipe and data must match); without it an
    existing checkpoint is an error, so no finished run is overwritten by accident.
    """
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
        raise HwnasError(f"eval_every must be a positive integer, got {eval_every!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise HwnasError(f"threads must be a positive integer, got {threads!r}")
    run_dir = Path(run_dir)
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if checkpoint_path.exists() and not resume:
        raise HwnasError(
            f"{checkpoint_path} exists: pass resume to continue it, or use another run dir"
        )
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            return _train(arch, data, recipe, run_dir, resume and checkpoint_path.exists(),
                          channels_last, eval_every, dict(config_extra or {}), progress)
    finally:
        torch.set_num_threads(previous_threads)


def _train(arch: ArchSpec, data: CifarArrays, recipe: TrainRecipe, run_dir: Path, resume: bool,
           channels_last: bool, eval_every: int, config_extra: dict[str, Any],
           progress: TrainProgress | None) -> TrainResult:
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
    if resume:
        state = load_checkpoint(run_dir / CHECKPOINT_NAME)
        _check_resumable(state, arch, recipe, fingerprint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        first_epoch, wall_seconds = state["epoch"], state["wall_seconds"]
        history = json.loads(state["history"])
        logger.info("resuming %s after epoch %d of %d", run_dir, first_epoch, recipe.epochs)
    else:
        atomic_write_json(run_dir / "config.json", {
            **config_extra, "arch": arch.to_string(), "arch_spec": arch.to_dict(),
            "recipe": recipe.to_dict(), "data": data.describe(),
            "threads": torch.get_num_threads(), "channels_last": channels_last,
            "eval_every": eval_every, "torch_version": torch.__version__,
            "hwnas_version": hwnas.__version__,
        })
    for epoch in range(first_epoch, recipe.epochs):
        if progress is not None:
            progress.epoch_started(epoch + 1, recipe.epochs, len(train_batches))
        started = time.perf_counter()
        metrics = train_one_epoch(model, train_batches, optimizer, recipe=recipe, epoch=epoch,
                                  progress=progress)
        last = epoch + 1 == recipe.epochs
        top1 = evaluate(model, test_batches) if last or (epoch + 1) % eval_every == 0 else None
        seconds = time.perf_counter() - started
        wall_seconds += seconds
        history.append({"epoch": epoch + 1, **metrics, "test_top1": top1, "seconds": seconds})
        save_checkpoint(run_dir / CHECKPOINT_NAME, _checkpoint_state(
            arch, recipe, fingerprint, model, optimizer, history, wall_seconds
        ))
        _write_history(run_dir, history)
        logger.info("epoch %d/%d %s", epoch + 1, recipe.epochs, history[-1])
        if progress is not None:
            progress.epoch_done(history[-1])
    result = _result(run_dir, arch, history, wall_seconds)
    atomic_write_json(run_dir / "result.json", {
        **result.to_dict(), "parameters": sum(p.numel() for p in model.parameters()),
        "train_images": int(len(data.train_y)), "test_images": int(len(data.test_y)),
    })
    return result
