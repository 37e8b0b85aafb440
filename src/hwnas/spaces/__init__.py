"""Search spaces as data. ``get_space(name)`` returns one by its CLI name."""

from __future__ import annotations

from hwnas.arch.spec import SpecError
from hwnas.spaces.fbnet import LayerwiseSpace, fbnet_space

SPACE_NAMES = ("fbnet-cifar", "fbnet-cifar100", "fbnet-imagenet")


def get_space(name: str) -> LayerwiseSpace:
    """A search space by name: fbnet-cifar (10 classes), fbnet-cifar100, fbnet-imagenet."""
    if name == "fbnet-cifar":
        return fbnet_space("cifar")
    if name == "fbnet-cifar100":
        return fbnet_space("cifar", num_classes=100)
    if name == "fbnet-imagenet":
        return fbnet_space("imagenet")
    raise SpecError(f"unknown search space {name!r} (known: {', '.join(SPACE_NAMES)})")
