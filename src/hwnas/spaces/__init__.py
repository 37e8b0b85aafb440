"""Search spaces as data. ``get_space(name)`` returns one by its CLI name."""

from __future__ import annotations

from hwnas.arch.spec import SpecError
from hwnas.spaces.fbnet import LayerwiseSpace, fbnet_space

SPACE_NAMES = ("fbnet-cifar", "fbnet-cifar100", "fbnet-imagenet")
#: ChamNet spaces (hwnas.spaces.chamnet): not layer-wise, so kept out of SPACE_NAMES, which the
#: layer-wise code and tests iterate over
CHAMNET_SPACE_NAMES = ("chamnet", "chamnet-cifar")
#: DMaskingNAS / FBNetV2 spaces (hwnas.spaces.dmasking): resolution x widths x blocks
DMASKING_SPACE_NAMES = ("dmasking-cifar", "dmasking-cifar-sparse")


def get_space(name: str) -> LayerwiseSpace:
    """A search space by name: fbnet-cifar (10 classes), fbnet-cifar100, fbnet-imagenet."""
    if name == "fbnet-cifar":
        return fbnet_space("cifar")
    if name == "fbnet-cifar100":
        return fbnet_space("cifar", num_classes=100)
    if name == "fbnet-imagenet":
        return fbnet_space("imagenet")
    if name in CHAMNET_SPACE_NAMES:
        from hwnas.spaces.chamnet import chamnet_space

        setting = "imagenet" if name == "chamnet" else "cifar"
        return chamnet_space(setting)  # type: ignore[return-value]
    if name in DMASKING_SPACE_NAMES:
        from hwnas.spaces.dmasking import dmasking_space

        return dmasking_space(sparse_table=name.endswith("-sparse"))  # type: ignore[return-value]
    known = ", ".join(SPACE_NAMES + CHAMNET_SPACE_NAMES + DMASKING_SPACE_NAMES)
    raise SpecError(f"unknown search space {name!r} (known: {known})")
