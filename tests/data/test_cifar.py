"""CIFAR-10 loading: the real JPEG archive (prefixes; full decode is `slow`), the cache, the
official python/binary formats on tiny synthetic files, and the subset/split helpers."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from hwnas.data.cifar import (
    CLASS_NAMES,
    JPEG_ARCHIVE,
    balanced_subset,
    decode_jpeg_archive,
    load_cifar10,
    split_indices,
)
from hwnas.data.paths import data_file
from hwnas.errors import HwnasError

# data README section 3: mean and std of pixel / 255 over the full decoded splits.
README_TRAIN_MEAN = (0.4913, 0.4821, 0.4465)
README_TEST_MEAN = (0.4941, 0.4851, 0.4504)
README_TRAIN_STD = (0.245, 0.243, 0.261)


def _real_archive():
    try:
        return data_file(JPEG_ARCHIVE)
    except HwnasError as error:
        pytest.skip(f"real CIFAR-10 archive not available: {error}")


def _channel_mean(images: np.ndarray) -> np.ndarray:
    return images.reshape(-1, 3).mean(axis=0) / 255


# ---------------------------------------------------------------- real JPEG archive
def test_real_archive_prefix_decodes_to_balanced_uint8_images():
    arrays = decode_jpeg_archive(_real_archive(), limit=300)
    assert arrays.train_x.shape == (300, 32, 32, 3) and arrays.test_x.shape == (300, 32, 32, 3)
    assert arrays.train_x.dtype == np.uint8
    assert arrays.class_names == CLASS_NAMES
    # The archive is class round-robin, so every prefix of 300 holds 30 of each class.
    assert np.bincount(arrays.train_y, minlength=10).tolist() == [30] * 10
    assert np.bincount(arrays.test_y, minlength=10).tolist() == [30] * 10
    assert arrays.train_x.min() == 0 and arrays.train_x.max() == 255
    # 300 images estimate the README's full-set channel means to within a few hundredths.
    np.testing.assert_allclose(_channel_mean(arrays.train_x), README_TRAIN_MEAN, atol=0.04)
    np.testing.assert_allclose(_channel_mean(arrays.test_x), README_TEST_MEAN, atol=0.04)


def test_real_archive_is_decoded_once_then_read_from_the_cache(tmp_path):
    calls = []
    first = load_cifar10(_real_archive(), cache=tmp_path, limit=100,
                         progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (200, 200)
    cached = list(tmp_path.glob("cifar10-jpeg-*.npz"))
    assert len(cached) == 1
    with np.load(cached[0], allow_pickle=False) as archive:  # a plain, pickle-free npz
        assert set(archive.files) == {"train_x", "train_y", "test_x", "test_y", "class_names"}
    calls.clear()
    second = load_cifar10(_real_archive(), cache=tmp_path, limit=100,
                          progress=lambda done, total: calls.append((done, total)))
    assert calls == []
    np.testing.assert_array_equal(first.train_x, second.train_x)
    np.testing.assert_array_equal(first.test_y, second.test_y)
    assert second.class_names == CLASS_NAMES


@pytest.mark.slow
def test_full_real_archive_matches_the_readme(tmp_path):
    arrays = load_cifar10(_real_archive(), cache=tmp_path)
    assert arrays.train_x.shape == (50000, 32, 32, 3) and arrays.test_x.shape == (10000, 32, 32, 3)
    assert np.bincount(arrays.train_y).tolist() == [5000] * 10
    assert np.bincount(arrays.test_y).tolist() == [1000] * 10
    np.testing.assert_allclose(_channel_mean(arrays.train_x), README_TRAIN_MEAN, atol=1e-4)
    np.testing.assert_allclose(_channel_mean(arrays.test_x), README_TEST_MEAN, atol=1e-4)
    train_std = (arrays.train_x.reshape(-1, 3) / 255).std(axis=0)
    np.testing.assert_allclose(train_std, README_TRAIN_STD, atol=1e-3)


# ---------------------------------------------------------------- synthetic JPEG archive
def _write_jpeg_archive(path, images, labels, split):
    streams = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=95)
        streams.append(np.frombuffer(buffer.getvalue(), dtype=np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in streams])]).astype(np.int64)
    np.savez(path, jpeg_bytes=np.concatenate(streams), offsets=offsets,
             labels=np.asarray(labels, np.uint8), split=np.asarray(split, np.uint8),
             class_names=np.array(CLASS_NAMES))


def test_changed_source_is_decoded_again(tmp_path):
    source = tmp_path / "tiny.npz"
    flat = [np.full((32, 32, 3), 40, np.uint8), np.full((32, 32, 3), 200, np.uint8)]
    _write_jpeg_archive(source, flat, [3, 7], [0, 1])
    first = load_cifar10(source, cache=tmp_path / "cache")
    assert first.train_y.tolist() == [3] and first.test_y.tolist() == [7]
    assert abs(int(first.train_x.mean()) - 40) <= 2  # JPEG of a flat image is near exact
    _write_jpeg_archive(source, flat[::-1], [3, 7], [0, 1])
    os.utime(source, ns=(1, 1))  # a different mtime even on coarse-clock file systems
    second = load_cifar10(source, cache=tmp_path / "cache")
    assert abs(int(second.train_x.mean()) - 200) <= 2
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


# ---------------------------------------------------------------- official distributions
def _synthetic_split(count: int, rng: np.random.Generator):
    images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, count)
    return images, labels


def _planes(images: np.ndarray) -> np.ndarray:
    """NHWC -> the distribution's rows of 1024 R, 1024 G, 1024 B bytes."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


def _write_distribution(folder, kind: str, protocol: int = 2):
    """Six tiny batches (5 train of 4 images, 1 test of 3) in the python or binary format."""
    rng = np.random.default_rng(7)
    parts = {name: _synthetic_split(4 if name != "test_batch" else 3, rng)
             for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]}
    folder.mkdir(parents=True)
    for name, (images, labels) in parts.items():
        if kind == "python":
            batch = {b"batch_label": b"synthetic", b"labels": [int(v) for v in labels],
                     b"data": _planes(images), b"filenames": [b"x.png"] * len(labels)}
            (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        else:
            records = np.concatenate([labels[:, None].astype(np.uint8), _planes(images)], axis=1)
            records.tofile(folder / f"{name}.bin")
    names = [f"class{i}" for i in range(10)]
    if kind == "python":
        (folder / "batches.meta").write_bytes(
            pickle.dumps({b"label_names": [n.encode() for n in names]}, protocol=protocol)
        )
    else:
        (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    train = [parts[f"data_batch_{i}"] for i in range(1, 6)]
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
            *parts["test_batch"], tuple(names))


@pytest.mark.parametrize("kind, folder_name, protocol", [
    ("python", "cifar-10-batches-py", 2),  # Python-2 era protocol (bytes via _codecs.encode)
    ("python", "cifar-10-batches-py", 5),  # numpy's protocol-5 path (_frombuffer)
    ("binary", "cifar-10-batches-bin", 2),
])
def test_official_distribution_formats_load_to_nhwc(tmp_path, kind, folder_name, protocol):
    train_x, train_y, test_x, test_y, names = _write_distribution(
        tmp_path / folder_name, kind, protocol
    )
    arrays = load_cifar10(tmp_path)  # the parent folder is found as well as the batch folder
    np.testing.assert_array_equal(arrays.train_x, train_x)
    np.testing.assert_array_equal(arrays.train_y, train_y)
    np.testing.assert_array_equal(arrays.test_x, test_x)
    np.testing.assert_array_equal(arrays.test_y, test_y)
    assert arrays.class_names == names
    assert arrays.train_y.dtype == np.int64
    limited = load_cifar10(tmp_path / folder_name, limit=5)
    assert len(limited.train_y) == 5 and len(limited.test_y) == 3


class _Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


@pytest.mark.parametrize("file_name", ["data_batch_1", "test_batch", "batches.meta"])
def test_malicious_pickle_is_refused_before_it_runs(tmp_path, file_name):
    folder = tmp_path / "cifar-10-batches-py"
    _write_distribution(folder, "python")
    marker = tmp_path / "exploit-ran"
    (folder / file_name).write_bytes(
        pickle.dumps({b"data": _Exploit(str(marker)), b"labels": []}, protocol=2)
    )
    with pytest.raises(HwnasError, match=r"refused to unpickle global (posix|os|nt)\.mkdir"):
        load_cifar10(tmp_path)
    assert not marker.exists()


def test_truncated_binary_batch_is_an_error(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    _write_distribution(folder, "binary")
    with open(folder / "data_batch_3.bin", "ab") as file:
        file.write(b"\x00" * 10)
    with pytest.raises(HwnasError, match="data_batch_3.bin has 12302 bytes"):
        load_cifar10(tmp_path)


def test_missing_source_and_empty_folder_are_errors(tmp_path):
    with pytest.raises(HwnasError, match="not found"):
        load_cifar10(tmp_path / "nothing.npz")
    with pytest.raises(HwnasError, match="no CIFAR-10 distribution"):
        load_cifar10(tmp_path)


# ---------------------------------------------------------------- subsets and splits
def test_balanced_subset_takes_per_class_examples_deterministically():
    labels = np.repeat(np.arange(10), 50)
    chosen = balanced_subset(labels, 7, np.random.default_rng(3))
    assert np.bincount(labels[chosen]).tolist() == [7] * 10
    assert len(np.unique(chosen)) == 70
    again = balanced_subset(labels, 7, np.random.default_rng(3))
    np.testing.assert_array_equal(chosen, again)
    with pytest.raises(HwnasError, match="per_class 51 exceeds the 50 examples of class 0"):
        balanced_subset(labels, 51, np.random.default_rng(0))
    with pytest.raises(HwnasError, match="per_class"):
        balanced_subset(labels, 0, np.random.default_rng(0))


def test_split_indices_is_a_class_balanced_partition():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    weights, architecture = split_indices(labels, fraction=0.8, rng=np.random.default_rng(0))
    assert np.intersect1d(weights, architecture).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([weights, architecture])), np.arange(100))
    assert np.bincount(labels[weights]).tolist() == [8, 16, 24, 32]
    first, second = split_indices(10, fraction=0.3, rng=np.random.default_rng(0))
    assert len(first) == 3 and len(second) == 7
    for bad in (0, 1, 1.5, True):
        with pytest.raises(HwnasError, match="fraction"):
            split_indices(labels, fraction=bad, rng=np.random.default_rng(0))
