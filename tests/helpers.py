"""Small helpers shared by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwnas.arch.spec import ArchSpec


def sample_archs(space, count: int, seed: int = 0) -> list[ArchSpec]:
    """``count`` uniformly random networks of a space (its decisions' own sampler)."""
    rows = space.decisions.sample(count, np.random.default_rng(seed))
    return [space.to_arch(row) for row in rows]


def sample_arch(space, seed: int = 0) -> ArchSpec:
    return sample_archs(space, 1, seed)[0]


def synthetic_cifar(folder: Path, per_class: int = 12) -> Path:
    """A CIFAR-10 binary distribution of ``per_class`` random images per class and split, the
    red channel brighter with the class (so that training learns something)."""
    batches = folder / "cifar-10-batches-bin"
    batches.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
        pixels = rng.integers(0, 128, (len(labels), 3072), dtype=np.uint8)
        pixels[:, :1024] += (12 * labels[:, None]).astype(np.uint8)
        np.concatenate([labels[:, None], pixels], axis=1).tofile(batches / f"{name}.bin")
    return folder
