"""CIFAR-10 (Krizhevsky 2009) as in-memory uint8 arrays, class-balanced subsets and splits.

Sources, in :func:`load_cifar10`:

* default: ``cifar10_jpeg_all.npz`` from the data folder (``hwnas.data.paths``), all 60,000
  images as JPEG byte streams (IJG quality ~75, so *lossy*: not bit-identical to the official
  binaries; docs/reference.md section 4). They are decoded once with Pillow and cached as a plain
  ``.npz`` (no pickle) in ``$HWNAS_CACHE`` or ``~/.cache/hwnas``, keyed by the source file's
  name, size and mtime and the Pillow version, so a changed source or decoder is re-decoded.
* a folder holding the official *python* or *binary* distribution
  (:mod:`hwnas.data.cifar_formats`; the pickled python batches are read with a restricted
  unpickler that only rebuilds numpy arrays).

Images are ``uint8 [N, 32, 32, 3]`` (NHWC), labels ``int64 [N]``, classes in the official order.
The batch pipeline that turns them into normalised tensors is :mod:`hwnas.data.batches`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hwnas.data.cifar_formats import read_distribution
from hwnas.data.paths import data_file
from hwnas.errors import HwnasError
from hwnas.io import atomic_write_bytes

logger = logging.getLogger(__name__)

JPEG_ARCHIVE = "cifar10_jpeg_all.npz"
CACHE_ENVIRONMENT_VARIABLE = "HWNAS_CACHE"
CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
CACHE_FORMAT_VERSION = 1
ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while decoding; the CLI drives a rich bar with it."""


@dataclass(frozen=True)
class CifarArrays:
    """CIFAR-10 in memory: NHWC uint8 images, int64 labels, class names, and where it came from."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: tuple[str, ...]
    source: str = ""

    def subset(
        self,
        *,
        train_per_class: int | None = None,
        test_per_class: int | None = None,
        rng: np.random.Generator,
    ) -> CifarArrays:
        """A class-balanced subset of either split (``None`` keeps the split whole)."""
        train = np.arange(len(self.train_y)) if train_per_class is None else balanced_subset(
            self.train_y, train_per_class, rng
        )
        test = np.arange(len(self.test_y)) if test_per_class is None else balanced_subset(
            self.test_y, test_per_class, rng
        )
        return CifarArrays(
            self.train_x[train], self.train_y[train], self.test_x[test], self.test_y[test],
            self.class_names, self.source,
        )

    def describe(self) -> dict[str, object]:
        """A JSON-able summary (counts, source file name, content fingerprint) for run configs:
        the folder is left out so results can be shared; the fingerprint identifies the data."""
        kind, _, location = self.source.partition(":")
        return {
            "source": f"{kind}:{Path(location).name}" if location else self.source,
            "train_images": int(len(self.train_y)),
            "test_images": int(len(self.test_y)),
            "class_names": list(self.class_names),
            "fingerprint": self.fingerprint(),
        }

    def fingerprint(self) -> str:
        """BLAKE2b of all images and labels: resuming a run checks the data did not change."""
        digest = hashlib.blake2b(digest_size=16)
        for array in (self.train_x, self.train_y, self.test_x, self.test_y):
            digest.update(np.ascontiguousarray(array).data)
        return digest.hexdigest()


def cache_dir(explicit: str | Path | None = None) -> Path:
    """The cache folder: ``explicit``, else ``$HWNAS_CACHE``, else ``~/.cache/hwnas``."""
    if explicit is not None:
        return Path(explicit)
    if os.environ.get(CACHE_ENVIRONMENT_VARIABLE):
        return Path(os.environ[CACHE_ENVIRONMENT_VARIABLE])
    return Path.home() / ".cache" / "hwnas"


def load_cifar10(
    source: str | Path | None = None,
    data_dir: str | Path | None = None,
    *,
    cache: str | Path | None = None,
    limit: int | None = None,
    progress: ProgressCallback | None = None,
) -> CifarArrays:
    """Load CIFAR-10 from ``source`` (a JPEG ``.npz`` or a distribution folder) or the data folder.

    ``data_dir`` is the hwnas data folder searched for ``cifar10_jpeg_all.npz`` when ``source``
    is None. ``limit`` keeps only the first ``limit`` images of each split (in file order; the
    JPEG archive is class round-robin, so its prefixes are balanced) and is meant for tests.
    ``cache`` overrides the cache folder of decoded JPEGs; ``progress`` follows decoding.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise HwnasError(f"limit must be a positive integer, got {limit!r}")
    path = data_file(JPEG_ARCHIVE, data_dir) if source is None else Path(source)
    if path.is_dir():
        train_x, train_y, test_x, test_y, names = read_distribution(path)
        stop = limit if limit is not None else None
        return CifarArrays(
            train_x[:stop], train_y[:stop], test_x[:stop], test_y[:stop],
            names or CLASS_NAMES, f"distribution:{path}",
        )
    if not path.is_file():
        raise HwnasError(f"CIFAR-10 source not found: {path}")
    return _load_jpeg_archive(path, cache_dir(cache), limit, progress)


def _cache_key(path: Path, limit: int | None) -> str:
    import PIL

    status = path.stat()
    key = {
        "format": CACHE_FORMAT_VERSION, "name": path.name, "size": status.st_size,
        "mtime_ns": status.st_mtime_ns, "limit": limit, "pillow": PIL.__version__,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def _load_jpeg_archive(
    path: Path, folder: Path, limit: int | None, progress: ProgressCallback | None
) -> CifarArrays:
    cache_path = folder / f"cifar10-jpeg-{_cache_key(path, limit)}.npz"
    if cache_path.is_file():
        try:
            with np.load(cache_path, allow_pickle=False) as cached:
                arrays = {name: cached[name] for name in cached.files}
            return CifarArrays(
                arrays["train_x"], arrays["train_y"], arrays["test_x"], arrays["test_y"],
                tuple(str(name) for name in arrays["class_names"]), f"jpeg:{path}",
            )
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
            logger.warning("ignoring unreadable cache %s (%s); decoding again", cache_path, error)
    arrays = decode_jpeg_archive(path, limit=limit, progress=progress)
    try:
        _atomic_save_npz(cache_path, arrays)
    except OSError as error:  # an unwritable cache costs time on the next run, nothing else
        logger.warning("cannot cache decoded CIFAR-10 in %s: %s", folder, error)
    return arrays


def decode_jpeg_archive(
    path: Path, *, limit: int | None = None, progress: ProgressCallback | None = None
) -> CifarArrays:
    """Decode the JPEG archive (``jpeg_bytes``, ``offsets``, ``labels``, ``split``,
    ``class_names``) with Pillow, without caching."""
    from PIL import Image

    try:
        with np.load(path, allow_pickle=False) as archive:
            jpeg_bytes, offsets = archive["jpeg_bytes"], archive["offsets"]
            labels, split = archive["labels"].astype(np.int64), archive["split"]
            class_names = tuple(str(name) for name in archive["class_names"])
    except (OSError, KeyError, ValueError) as error:
        raise HwnasError(f"cannot read CIFAR-10 JPEG archive {path}: {error}") from None
    if len(offsets) != len(labels) + 1 or len(split) != len(labels):
        raise HwnasError(f"CIFAR-10 JPEG archive {path}: offsets/labels/split lengths disagree")
    selected = [np.flatnonzero(split == part)[:limit] for part in (0, 1)]
    total, done, started = sum(len(part) for part in selected), 0, time.perf_counter()
    images = []
    for indices in selected:
        decoded = np.empty((len(indices), 32, 32, 3), dtype=np.uint8)
        for row, index in enumerate(indices):
            stream = io.BytesIO(jpeg_bytes[offsets[index]:offsets[index + 1]].tobytes())
            picture = np.asarray(Image.open(stream).convert("RGB"))
            if picture.shape != (32, 32, 3):
                raise HwnasError(f"{path}: image {index} has shape {picture.shape}, not 32x32x3")
            decoded[row] = picture
            done += 1
            if progress is not None and (done % 500 == 0 or done == total):
                progress(done, total)
        images.append(decoded)
    logger.info("decoded %d CIFAR-10 JPEGs in %.1f s", total, time.perf_counter() - started)
    return CifarArrays(
        images[0], labels[selected[0]], images[1], labels[selected[1]], class_names,
        f"jpeg:{path}",
    )


def _atomic_save_npz(path: Path, arrays: CifarArrays) -> None:
    """Write the decoded arrays (about 185 MB, built in memory first) atomically to ``path``."""
    buffer = io.BytesIO()
    np.savez(
        buffer, train_x=arrays.train_x, train_y=arrays.train_y, test_x=arrays.test_x,
        test_y=arrays.test_y, class_names=np.array(arrays.class_names),
    )
    atomic_write_bytes(path, buffer.getvalue())


def balanced_subset(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``per_class`` randomly chosen examples of every class in ``labels``."""
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise HwnasError(f"per_class must be a positive integer, got {per_class!r}")
    labels = np.asarray(labels)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise HwnasError(
                f"per_class {per_class} exceeds the {len(members)} examples of class {label}"
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def split_indices(
    labels_or_count: np.ndarray | int, *, fraction: float = 0.8, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split examples into two disjoint sorted index sets holding ``fraction`` and the rest.

    FBNet trains the supernet weights on 80 % of the training split and the architecture
    parameters on the other 20 % (Wu et al. 2019, Sec. 4.1), hence the default. Given labels,
    every class is split in the same proportion (``round(fraction * class_count)``); given a
    count ``n``, the indices ``0..n-1`` are split at random.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
            or not 0 < fraction < 1:
        raise HwnasError(f"fraction must be strictly between 0 and 1, got {fraction!r}")
    if isinstance(labels_or_count, (int, np.integer)) and not isinstance(labels_or_count, bool):
        groups = [np.arange(int(labels_or_count))]
    else:
        labels = np.asarray(labels_or_count)
        groups = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    first, second = [], []
    for members in groups:
        shuffled = rng.permutation(members)
        cut = int(round(fraction * len(shuffled)))
        first.append(shuffled[:cut])
        second.append(shuffled[cut:])
    first_indices, second_indices = np.sort(np.concatenate(first)), np.sort(np.concatenate(second))
    if len(first_indices) == 0 or len(second_indices) == 0:
        raise HwnasError(
            f"fraction {fraction} leaves an empty part ({len(first_indices)} / "
            f"{len(second_indices)} examples)"
        )
    return first_indices.astype(np.int64), second_indices.astype(np.int64)
