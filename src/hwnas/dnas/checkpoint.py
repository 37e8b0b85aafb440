"""Resumable search state: written atomically, read back with ``torch.load(weights_only=True)``.

A checkpoint holds only tensors, numbers, strings and containers of them: the supernet state
(weights, BN statistics, theta), both optimizer states, the Gumbel generator's and the global
torch RNG's states, the position in the search (epoch, phase, step within the phase, global
step), the running sums of the current epoch, the finished epochs' history rows (as JSON text)
and the theta of every finished epoch. Restoring all of it makes a resumed search take exactly
the steps the uninterrupted one would have taken.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hwnas.dnas.supernet import SuperNet
from hwnas.errors import HwnasError
from hwnas.io import atomic_write_bytes

FORMAT_VERSION = 1
WEIGHTS, THETA = 0, 1  # phases of an epoch: first the weights, then theta


@dataclass
class SearchState:
    """Where the search is and what it has accumulated so far."""

    epoch: int = 0
    phase: int = WEIGHTS
    step: int = 0  # batches done in the current phase
    global_step: int = 0
    sums: dict[str, float] = field(default_factory=dict)  # running sums of the current epoch
    records: list[dict[str, Any]] = field(default_factory=list)  # finished epochs
    theta_history: list[torch.Tensor] = field(default_factory=list)  # theta after each epoch

    def add(self, name: str, value: float) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + float(value)

    def finish_epoch(self, record: dict[str, Any], theta: torch.Tensor) -> None:
        self.records.append(record)
        self.theta_history.append(theta.detach().cpu().clone())
        self.epoch += 1
        self.phase, self.step, self.sums = WEIGHTS, 0, {}


def save_checkpoint(
    path: str | Path,
    state: SearchState,
    supernet: SuperNet,
    weight_optimizer: torch.optim.Optimizer,
    theta_optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> None:
    """Serialise everything needed to resume and write it atomically to ``path``."""
    payload = {
        "format": FORMAT_VERSION,
        "model": supernet.state_dict(),
        "weight_optimizer": weight_optimizer.state_dict(),
        "theta_optimizer": theta_optimizer.state_dict(),
        "gumbel_generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "epoch": state.epoch,
        "phase": state.phase,
        "step": state.step,
        "global_step": state.global_step,
        "sums": dict(state.sums),
        "records_json": json.dumps(state.records),
        "theta_history": (
            torch.stack(state.theta_history) if state.theta_history else torch.empty(0)
        ),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(
    path: str | Path,
    supernet: SuperNet,
    weight_optimizer: torch.optim.Optimizer,
    theta_optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> SearchState:
    """Restore the objects from ``path`` in place and return the saved :class:`SearchState`."""
    payload = _read_payload(path, "DNAS checkpoint")
    try:
        supernet.load_state_dict(payload["model"], strict=True)
    except RuntimeError as error:
        raise HwnasError(f"checkpoint {path} does not fit this search space: {error}") from None
    weight_optimizer.load_state_dict(payload["weight_optimizer"])
    theta_optimizer.load_state_dict(payload["theta_optimizer"])
    generator.set_state(payload["gumbel_generator"])
    torch.set_rng_state(payload["torch_rng"])
    if payload["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    history = payload["theta_history"]
    return SearchState(
        epoch=int(payload["epoch"]),
        phase=int(payload["phase"]),
        step=int(payload["step"]),
        global_step=int(payload["global_step"]),
        sums={str(key): float(value) for key, value in payload["sums"].items()},
        records=json.loads(payload["records_json"]),
        theta_history=list(history) if history.numel() else [],
    )


def load_supernet_weights(path: str | Path, supernet: SuperNet) -> None:
    """Load the weights and BN statistics of another search's checkpoint into ``supernet``,
    leaving its theta as it is (a warm start: the shared weight warm-up of several searches).
    The checkpoint must come from a supernet of the same space and weight sharing."""
    payload = _read_payload(path, "warm-start checkpoint")
    weights = {key: value for key, value in payload["model"].items() if key != "theta"}
    try:
        missing, unexpected = supernet.load_state_dict(weights, strict=False)
    except RuntimeError as error:
        raise HwnasError(f"warm-start checkpoint {path} does not fit this supernet (its space "
                         f"and weight sharing, {supernet.weight_sharing!r}): {error}") from None
    missing = [key for key in missing if key != "theta"]
    if missing or unexpected:
        bad = (missing or unexpected)[0]
        raise HwnasError(f"warm-start checkpoint {path} does not fit this supernet (its space "
                         f"and weight sharing, {supernet.weight_sharing!r}): "
                         f"{'missing' if missing else 'unexpected'} weight {bad!r}")


def _read_payload(path: str | Path, what: str) -> dict[str, Any]:
    """The checkpoint's dictionary (tensors and plain values only: ``weights_only=True``)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as error:
        raise HwnasError(f"cannot read {what} {path}: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise HwnasError(f"{path} is not a DNAS checkpoint of format {FORMAT_VERSION}")
    return payload
