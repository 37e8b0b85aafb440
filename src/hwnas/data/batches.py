"""An in-memory batch pipeline for small images: whole-batch augmentation in torch, no workers.

A ``torch.utils.data.DataLoader`` with worker processes takes seconds to start and competes for
the CPU cores that train the network; for 32x32 images held in memory it is faster to gather a
batch with one index operation and augment all of it at once.

Training batches use the standard CIFAR augmentation (He et al. 2016, Sec. 4.2): zero-pad 4
pixels, take a random 32x32 crop, flip horizontally with probability 1/2. Every batch is then
normalised per channel, ``x = (pixel / 255 - mean) / std``, with the usual CIFAR-10 *train*
statistics mean (0.4914, 0.4822, 0.4465), std (0.247, 0.243, 0.261). (On the lossy JPEG copy
the train std is (0.245, 0.243, 0.261), docs/reference.md section 4; the usual values are kept
so checkpoints match common practice.)

Determinism: the shuffle order and the augmentation of epoch ``e`` come from a fresh
``torch.Generator`` seeded from ``(seed, e)`` only, so after :meth:`BatchIterator.set_epoch` a
resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from hwnas.data.cifar import CifarArrays
from hwnas.errors import HwnasError

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.247, 0.243, 0.261)


def epoch_seed(seed: int, epoch: int) -> int:
    """A 64-bit seed for one epoch, mixed from ``(seed, epoch)`` by numpy's SeedSequence."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0])


class BatchIterator:
    """Batches ``(images, labels)`` of NHWC uint8 images as normalised float tensors.

    Yields ``x`` of shape ``[B, 3, H, W]`` in ``channels_last`` memory (or contiguous when
    ``channels_last=False``) and ``y`` int64 ``[B]``, both on ``device``. With ``train=True``
    the order is shuffled and batches are augmented (random crop with ``padding``, horizontal
    flip); ``drop_last`` defaults to ``train`` so BatchNorm never sees a batch of one.
    """

    def __init__(
        self,
        images: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        drop_last: bool | None = None,
        padding: int = 4,
        mean: Sequence[float] = CIFAR10_MEAN,
        std: Sequence[float] = CIFAR10_STD,
        channels_last: bool = True,
        device: str | torch.device = "cpu",
    ) -> None:
        self.images = torch.as_tensor(images)
        self.labels = torch.as_tensor(labels).long()
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[3] != 3:
            raise HwnasError(
                f"images must be uint8 [N, H, W, 3], got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.shape != (len(self.images),):
            raise HwnasError(
                f"labels shape {tuple(self.labels.shape)} does not match {len(self.images)} images"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise HwnasError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise HwnasError(f"padding must be a non-negative integer, got {padding!r}")
        self.batch_size = batch_size
        self.train = train
        self.seed = seed
        self.drop_last = train if drop_last is None else drop_last
        self.padding = padding
        self.channels_last = channels_last
        self.device = torch.device(device)
        # (pixel - 255 mean) / (255 std) == (pixel / 255 - mean) / std, in one pass.
        self._shift = torch.tensor(mean, dtype=torch.float32) * 255
        self._scale = 1 / (torch.tensor(std, dtype=torch.float32) * 255)
        self.epoch = 0
        if len(self) == 0:
            raise HwnasError(
                f"{len(self.images)} images make no batch of {batch_size} "
                f"(drop_last={self.drop_last})"
            )

    def __call__(self, epoch: int) -> BatchIterator:
        """The batches of ``epoch`` (the form a search loop takes: epoch -> batches)."""
        self.set_epoch(epoch)
        return self

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle order and augmentation of ``epoch`` (train mode only matters)."""
        self.epoch = epoch

    @property
    def num_images(self) -> int:
        return len(self.images)

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.images) // self.batch_size
        return -(-len(self.images) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self.train:
            for start in range(0, len(self) * self.batch_size, self.batch_size):
                indices = torch.arange(start, min(start + self.batch_size, len(self.images)))
                yield self._finish(self.images[indices]), self._labels(indices)
            return
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(len(self.images), generator=generator)
        for batch in range(len(self)):
            indices = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            pixels = self._augment(self.images[indices], generator)
            yield self._finish(pixels), self._labels(indices)

    def _augment(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random crop after zero padding, then a random horizontal flip, on an NHWC batch."""
        count, height, width, channels = pixels.shape
        pad = self.padding
        if pad:
            padded = pixels.new_zeros((count, height + 2 * pad, width + 2 * pad, channels))
            padded[:, pad:pad + height, pad:pad + width] = pixels
            offsets = torch.randint(0, 2 * pad + 1, (count, 2), generator=generator)
            rows = offsets[:, :1] + torch.arange(height)  # [B, H]
            columns = offsets[:, 1:] + torch.arange(width)  # [B, W]
            batch_index = torch.arange(count)[:, None, None]
            pixels = padded[batch_index, rows[:, :, None], columns[:, None, :]]
        flip = torch.rand(count, generator=generator) < 0.5
        return torch.where(flip[:, None, None, None], pixels.flip(2), pixels)

    def _finish(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC -> normalised float NCHW; NHWC storage *is* the channels_last layout."""
        normalised = pixels.float().sub_(self._shift).mul_(self._scale).permute(0, 3, 1, 2)
        if not self.channels_last:
            normalised = normalised.contiguous()
        return normalised.to(self.device)

    def _labels(self, indices: torch.Tensor) -> torch.Tensor:
        return self.labels[indices].to(self.device)


def resize_images(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Resize a float N x C x H x W batch to ``resolution`` px (bilinear, antialiased); the one
    resize used both by the supernet and for training a derived network."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    return F.interpolate(images, size=(resolution, resolution), mode="bilinear",
                         align_corners=False, antialias=True)


def resize_image_arrays(images: np.ndarray, resolution: int, chunk: int = 2048) -> np.ndarray:
    """NHWC uint8 images resized like :func:`resize_images` (rounded back to uint8): the data a
    network derived at a smaller resolution is trained and tested on."""
    if images.shape[1] == resolution and images.shape[2] == resolution:
        return images
    parts = []
    for start in range(0, len(images), chunk):
        batch = torch.from_numpy(np.ascontiguousarray(images[start:start + chunk]))
        resized = resize_images(batch.permute(0, 3, 1, 2).float(), resolution)
        parts.append(resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(parts) if parts else images[:, :resolution, :resolution]


def cifar_at_resolution(data: CifarArrays, resolution: int) -> CifarArrays:
    """Both splits of ``data`` resized to ``resolution`` px (unchanged at their own size): what a
    derived network that chose a smaller input resolution trains and tests on."""
    if data.train_x.shape[1] == resolution:
        return data
    return replace(data, train_x=resize_image_arrays(data.train_x, resolution),
                   test_x=resize_image_arrays(data.test_x, resolution),
                   source=f"{data.source} resized to {resolution} px")
