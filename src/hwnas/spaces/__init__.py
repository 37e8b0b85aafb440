"""The registered search spaces: ``get_space(name)`` and what each can be searched with.

Every space implements :class:`hwnas.spaces.space.SearchSpace`. A registered space lists the
strategies that take it: ``dnas`` (FBNet's layer-wise supernet), ``dmasking`` (FBNetV2's masked
supernet), ``chamnet`` (the predictor-based searches and the baselines) and ``lut`` (a latency
table can be built for it: it has layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from hwnas.errors import SpecError
from hwnas.spaces.chamnet import chamnet_space
from hwnas.spaces.dmasking import dmasking_space
from hwnas.spaces.fbnet import fbnet_space
from hwnas.spaces.nb201 import nb201_space
from hwnas.spaces.space import SearchSpace

STRATEGIES = ("dnas", "dmasking", "dnas-nb201", "chamnet", "lut")


@dataclass(frozen=True)
class RegisteredSpace:
    name: str
    build: Callable[[], SearchSpace]
    strategies: tuple[str, ...]
    description: str


REGISTRY: dict[str, RegisteredSpace] = {entry.name: entry for entry in (
    RegisteredSpace("fbnet-cifar", lambda: fbnet_space("cifar"), ("dnas", "chamnet", "lut"),
                    "FBNet 22 layers x 9 candidates, CIFAR-10 setting (32 px)"),
    RegisteredSpace("fbnet-cifar100", lambda: fbnet_space("cifar", num_classes=100),
                    ("dnas", "chamnet", "lut"), "the same with 100 classes (HW-NAS-Bench's)"),
    RegisteredSpace("fbnet-imagenet", lambda: fbnet_space("imagenet"), ("dnas", "chamnet", "lut"),
                    "FBNet's ImageNet setting (224 px, 1000 classes)"),
    RegisteredSpace("chamnet", lambda: chamnet_space("imagenet"), ("chamnet",),
                    "ChamNet's MobileNetV2-style ImageNet space (128-224 px)"),
    RegisteredSpace("chamnet-cifar", lambda: chamnet_space("cifar"), ("chamnet", "lut"),
                    "a small ChamNet space at 32 px"),
    RegisteredSpace("dmasking-cifar", lambda: dmasking_space(), ("dmasking", "chamnet", "lut"),
                    "FBNetV2 resolution x widths x blocks over FBNet's CIFAR stages"),
    RegisteredSpace("dmasking-cifar-sparse", lambda: dmasking_space(sparse_table=True),
                    ("lut",), "the same, its latency table at each stage's extreme widths"),
    RegisteredSpace("nb201", nb201_space, ("chamnet", "dnas-nb201", "lut"),
                    "NAS-Bench-201's 15,625 cells (tabulated accuracy and latency)"),
)}


def space_names(strategy: str | None = None) -> tuple[str, ...]:
    """The registered names, or those a ``strategy`` takes."""
    return tuple(name for name, entry in REGISTRY.items()
                 if strategy is None or strategy in entry.strategies)


def get_space(name: str, strategy: str | None = None) -> SearchSpace:
    """The space called ``name``; with ``strategy``, refused unless that strategy takes it."""
    if name not in space_names(strategy):
        known = ", ".join(space_names(strategy))
        purpose = f" for {strategy}" if strategy else ""
        raise SpecError(f"unknown search space {name!r}{purpose} (known: {known})")
    return REGISTRY[name].build()
