"""The files of a DNAS run directory; every write is atomic.

==================  ===========================================================================
``config.json``     the resolved configuration: hyper-parameters, space, cost model and matrix
``history.jsonl``   one JSON object per finished epoch: temperature, learning rate, weight CE and
                    accuracy, theta loss/CE/LAT, E_theta[cost], argmax and its cost, P_theta
``theta.json``      P_theta [layer][candidate] after every epoch
``checkpoint.pt``   resumable state (:mod:`hwnas.dnas.checkpoint`)
``result.json``     :class:`hwnas.dnas.result.SearchResult`
``theta_final.png``  heatmap of the final P_theta (layers x candidates)
``theta_epochs.png`` per layer, the probability of the final argmax candidate over the epochs
==================  ===========================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.dnas.config import first_difference, with_added_defaults
from hwnas.errors import HwnasError
from hwnas.io import atomic_write_json, atomic_write_text, read_json
from hwnas.spaces.fbnet import LayerwiseSpace


@dataclass(frozen=True)
class RunFiles:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def history(self) -> Path:
        return self.root / "history.jsonl"

    @property
    def theta(self) -> Path:
        return self.root / "theta.json"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint.pt"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    @property
    def heatmap(self) -> Path:
        return self.root / "theta_final.png"

    @property
    def evolution(self) -> Path:
        return self.root / "theta_epochs.png"

    def prepare(self, resolved: dict[str, Any], *, resume: bool) -> None:
        """Refuse to overwrite a search unless resuming; on resume the config must match (a
        field the saved config predates counts as its default: :func:`with_added_defaults`)."""
        if not resume and (self.checkpoint.exists() or self.result.exists()):
            raise HwnasError(
                f"run directory {self.root} already holds a search; pass resume=True to continue "
                "it or choose another directory"
            )
        saved = self.read_config() if resume else None
        if saved is not None:
            difference = first_difference(with_added_defaults(saved), self.normalised(resolved))
            if difference:
                raise HwnasError(
                    f"cannot resume {self.root}: '{difference}' differs from its config.json"
                )
        self.write_config(resolved)

    @staticmethod
    def normalised(data: Any) -> Any:
        """``data`` as it reads back from JSON (tuples become lists, keys strings)."""
        return json.loads(json.dumps(data))

    def read_config(self) -> Any | None:
        return read_json(self.config, "DNAS run config") if self.config.exists() else None

    def write_config(self, resolved: dict[str, Any]) -> None:
        atomic_write_json(self.config, resolved)

    def write_history(self, records: list[dict[str, Any]], space: LayerwiseSpace) -> None:
        """Rewrite ``history.jsonl`` and ``theta.json`` from the finished epochs."""
        atomic_write_text(self.history, "".join(json.dumps(row) + "\n" for row in records))
        atomic_write_json(self.theta, {
            "space": space.name,
            "candidates": list(space.candidates),
            "layers": [f"blocks.{layer}" for layer in range(space.num_layers)],
            "probabilities": [row["probabilities"] for row in records],
        })

    def write_plots(self, records: list[dict[str, Any]], space: LayerwiseSpace) -> None:
        from hwnas.report.dnas_plots import save_probability_evolution, save_theta_heatmap

        if not records:
            return
        history = np.asarray([row["probabilities"] for row in records], dtype=float)
        save_theta_heatmap(
            history[-1], space.candidates, self.heatmap,
            title=f"{space.name}: P_theta after epoch {len(records)}",
        )
        save_probability_evolution(
            history, space.candidates, self.evolution,
            title=f"{space.name}: probability of the final argmax per layer",
        )
