"""Readers for the two official CIFAR-10 distributions (Krizhevsky 2009, cs.toronto.edu/~kriz).

* **python** (``cifar-10-batches-py/``): ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``,
  each a Python-2 pickle of a dict ``{b"data": uint8 ndarray [10000, 3072], b"labels": [int],
  ...}``; ``batches.meta`` holds ``label_names``. A pickle can run arbitrary code when loaded,
  so these files are read with :class:`RestrictedUnpickler`, which resolves only the handful of
  numpy globals needed to rebuild an ndarray and refuses every other global. Nothing else in
  hwnas unpickles anything.
* **binary** (``cifar-10-batches-bin/``): ``data_batch_{1..5}.bin`` and ``test_batch.bin``, each
  a run of 3073-byte records (1 label byte, then 1024 red, 1024 green, 1024 blue bytes in
  row-major order); ``batches.meta.txt`` lists the class names. No unpickling at all.

Both readers return images as ``uint8 [N, 32, 32, 3]`` (NHWC) and labels as ``int64 [N]``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import HwnasError

IMAGE_SIZE = 32
RECORD_PIXELS = 3 * IMAGE_SIZE * IMAGE_SIZE  # 3072 bytes: R plane, G plane, B plane
TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
TEST_BATCH = "test_batch"

# (module, name) pairs an ndarray pickle may reference. numpy 1.x pickles name numpy.core,
# numpy 2.x numpy._core; protocol 5 uses _frombuffer; Python-3 protocol-2 pickles encode bytes
# through _codecs.encode. All of them only build arrays, dtypes or bytes from given data.
ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
})


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS`; any other global is refused.

    Primitive containers (dict, list, tuple, bytes, str, numbers) need no globals and load as
    usual, so a CIFAR batch loads while a pickle naming e.g. ``os.system`` raises
    :class:`HwnasError` before anything is called.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise HwnasError(
                f"refused to unpickle global {module}.{name}: CIFAR-10 batches only need numpy "
                "arrays (the file is not a CIFAR-10 python batch, or it is unsafe)"
            )
        return super().find_class(module, name)


def restricted_load(path: Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (Python-2 strings read as bytes)."""
    with open(path, "rb") as file:
        try:
            return RestrictedUnpickler(file, encoding="bytes").load()
        except HwnasError:
            raise
        except Exception as error:  # a corrupt pickle raises many different types
            raise HwnasError(f"cannot read CIFAR-10 batch {path}: {error}") from None


def _text_keys(batch: Any, path: Path) -> dict[str, Any]:
    if not isinstance(batch, dict):
        raise HwnasError(f"CIFAR-10 batch {path} is a {type(batch).__name__}, expected a dict")
    return {key.decode("latin-1") if isinstance(key, bytes) else str(key): value
            for key, value in batch.items()}


def _planes_to_nhwc(rows: np.ndarray) -> np.ndarray:
    """[N, 3072] rows of R, G, B planes -> [N, 32, 32, 3] uint8."""
    images = rows.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images, dtype=np.uint8)


def _checked_labels(labels: Any, count: int, path: Path) -> np.ndarray:
    array = np.asarray(labels)
    if array.shape != (count,) or not np.issubdtype(array.dtype, np.integer):
        raise HwnasError(f"CIFAR-10 batch {path}: expected {count} integer labels")
    if count and (array.min() < 0 or array.max() > 9):
        raise HwnasError(
            f"CIFAR-10 batch {path}: labels outside 0..9 ({array.min()}..{array.max()})"
        )
    return array.astype(np.int64)


def read_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch of the python distribution -> (images NHWC uint8, labels int64)."""
    batch = _text_keys(restricted_load(path), path)
    data = batch.get("data")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != RECORD_PIXELS:
        raise HwnasError(
            f"CIFAR-10 batch {path}: 'data' must be a uint8 array [N, {RECORD_PIXELS}]"
        )
    return _planes_to_nhwc(data), _checked_labels(batch.get("labels"), len(data), path)


def read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One ``*.bin`` batch of the binary distribution -> (images NHWC uint8, labels int64)."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % (RECORD_PIXELS + 1):
        raise HwnasError(
            f"CIFAR-10 binary batch {path} has {raw.size} bytes, not a multiple of "
            f"{RECORD_PIXELS + 1} (1 label byte + {RECORD_PIXELS} pixel bytes per image)"
        )
    records = raw.reshape(-1, RECORD_PIXELS + 1)
    return _planes_to_nhwc(records[:, 1:]), _checked_labels(records[:, 0], len(records), path)


def _python_class_names(folder: Path) -> tuple[str, ...] | None:
    meta_path = folder / "batches.meta"
    if not meta_path.is_file():
        return None
    names = _text_keys(restricted_load(meta_path), meta_path).get("label_names")
    if not isinstance(names, list):
        raise HwnasError(f"{meta_path}: 'label_names' must be a list")
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)


def _binary_class_names(folder: Path) -> tuple[str, ...] | None:
    meta_path = folder / "batches.meta.txt"
    if not meta_path.is_file():
        return None
    return tuple(line.strip() for line in meta_path.read_text().splitlines() if line.strip())


def detect_distribution(folder: Path) -> tuple[str, Path] | None:
    """``("python" | "binary", batch folder)`` for a distribution at or inside ``folder``."""
    for candidate in (folder, folder / "cifar-10-batches-py", folder / "cifar-10-batches-bin"):
        if (candidate / "data_batch_1").is_file():
            return "python", candidate
        if (candidate / "data_batch_1.bin").is_file():
            return "binary", candidate
    return None


def read_distribution(
    folder: Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...] | None]:
    """Read a whole python or binary distribution: train x/y, test x/y, class names (or None)."""
    found = detect_distribution(folder)
    if found is None:
        raise HwnasError(
            f"no CIFAR-10 distribution in {folder}: expected cifar-10-batches-py/data_batch_1 "
            "or cifar-10-batches-bin/data_batch_1.bin"
        )
    kind, batch_folder = found
    reader, suffix = (read_python_batch, "") if kind == "python" else (read_binary_batch, ".bin")
    parts = []
    for name in (*TRAIN_BATCHES, TEST_BATCH):
        path = batch_folder / f"{name}{suffix}"
        if not path.is_file():
            raise HwnasError(f"CIFAR-10 {kind} distribution in {batch_folder} lacks {path.name}")
        parts.append(reader(path))
    train_x = np.concatenate([images for images, _ in parts[:-1]])
    train_y = np.concatenate([labels for _, labels in parts[:-1]])
    names = _python_class_names(batch_folder) if kind == "python" else _binary_class_names(
        batch_folder
    )
    return train_x, train_y, parts[-1][0], parts[-1][1], names
