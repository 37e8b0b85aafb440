"""CIFAR-10 batches for a DNAS search: a class-balanced subset split 80 % / 20 %.

FBNet (Wu et al. 2019, section 4.1) trains the supernet weights on 80 % of the training split
and theta on the remaining 20 %. Both streams are shuffled per epoch with a seed derived from
``(seed, epoch)`` (:class:`~hwnas.data.batches.BatchIterator`), so a resumed search sees the same
batches as an uninterrupted one.
"""

from __future__ import annotations

import numpy as np

from hwnas.data.batches import BatchIterator
from hwnas.data.cifar import CifarArrays, balanced_subset, split_indices
from hwnas.dnas.config import SearchSettings


def search_batches(
    data: CifarArrays, config: SearchSettings, weight_fraction: float = 0.8
) -> tuple[BatchIterator, BatchIterator]:
    """(weight batches, theta batches) from ``config.subset_per_class`` training images of
    every class (all of them when ``None``), in batches of ``config.batch_size``, drawn and
    shuffled from ``config.seed``. Both are augmented (crop + flip) and shuffled each epoch."""
    per_class, batch_size, seed = config.subset_per_class, config.batch_size, config.seed
    rng = np.random.default_rng(seed)
    pool = (
        np.arange(len(data.train_y))
        if per_class is None
        else balanced_subset(data.train_y, per_class, rng)
    )
    weight_part, theta_part = split_indices(data.train_y[pool], fraction=weight_fraction, rng=rng)
    weight_indices, theta_indices = pool[weight_part], pool[theta_part]
    weights = BatchIterator(
        data.train_x[weight_indices], data.train_y[weight_indices], batch_size,
        train=True, seed=seed,
    )
    theta = BatchIterator(
        data.train_x[theta_indices], data.train_y[theta_indices], batch_size,
        train=True, seed=seed + 1,
    )
    return weights, theta
