"""The in-memory batch pipeline: exact normalisation, genuine crop+flip, determinism per epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.data.batches import CIFAR10_MEAN, CIFAR10_STD, BatchIterator
from hwnas.errors import HwnasError


def _images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


def _unnormalise(batch: torch.Tensor) -> np.ndarray:
    """Back to NHWC pixel values (exact up to float rounding)."""
    mean = torch.tensor(CIFAR10_MEAN)[:, None, None]
    std = torch.tensor(CIFAR10_STD)[:, None, None]
    return ((batch * std + mean) * 255).permute(0, 2, 3, 1).numpy()


def test_eval_batches_are_normalised_in_order_and_channels_last():
    images = _images(10)
    batches = list(BatchIterator(images, np.arange(10), 4, train=False))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    expected = (images[:4] / 255 - np.array(CIFAR10_MEAN)) / np.array(CIFAR10_STD)
    np.testing.assert_allclose(x.permute(0, 2, 3, 1).numpy(), expected, atol=1e-5)
    assert y.tolist() == [0, 1, 2, 3]
    contiguous = next(iter(BatchIterator(images, np.arange(10), 4, train=False,
                                         channels_last=False)))[0]
    assert contiguous.is_contiguous()
    torch.testing.assert_close(contiguous, x)


def _is_padded_crop(output: np.ndarray, source: np.ndarray, padding: int) -> bool:
    """Whether ``output`` is some crop of zero-padded ``source``, flipped or not."""
    padded = np.pad(source.astype(np.float64), ((padding, padding), (padding, padding), (0, 0)))
    for top in range(2 * padding + 1):
        for left in range(2 * padding + 1):
            crop = padded[top:top + 32, left:left + 32]
            for candidate in (crop, crop[:, ::-1]):
                if np.allclose(candidate, output, atol=1e-3):
                    return True
    return False


def test_train_batches_are_crops_and_flips_of_their_own_images():
    images = _images(16, seed=1)
    iterator = BatchIterator(images, np.arange(16), 8, train=True, seed=5)
    x, y = next(iter(iterator))
    restored = _unnormalise(x)
    for row, index in enumerate(y.tolist()):
        assert _is_padded_crop(restored[row], images[index], padding=4)
    # With random crops, some image of the batch must actually have moved.
    assert not all(np.allclose(restored[r], images[i], atol=1e-3) for r, i in enumerate(y.tolist()))


def test_train_order_depends_only_on_seed_and_epoch():
    images, labels = _images(50), np.arange(50)

    def epoch_batches(seed: int, epoch: int):
        iterator = BatchIterator(images, labels, 16, train=True, seed=seed)
        iterator.set_epoch(epoch)
        return list(iterator)

    first, again = epoch_batches(3, 2), epoch_batches(3, 2)
    for (x1, y1), (x2, y2) in zip(first, again):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(first[0][1], epoch_batches(3, 1)[0][1])
    assert not torch.equal(first[0][1], epoch_batches(4, 2)[0][1])
    assert len(first) == 3  # drop_last in training: 50 // 16
    every = BatchIterator(images, labels, 16, train=True, seed=3, drop_last=False)
    assert sorted(torch.cat([y for _, y in every]).tolist()) == list(range(50))


def test_bad_inputs_are_rejected():
    with pytest.raises(HwnasError, match="uint8"):
        BatchIterator(np.zeros((4, 32, 32, 3), np.float32), np.arange(4), 2, train=False)
    with pytest.raises(HwnasError, match="labels shape"):
        BatchIterator(_images(4), np.arange(3), 2, train=False)
    with pytest.raises(HwnasError, match="batch_size"):
        BatchIterator(_images(4), np.arange(4), 0, train=False)
    with pytest.raises(HwnasError, match="make no batch"):
        BatchIterator(_images(4), np.arange(4), 8, train=True)
