"""``hwnas train`` / ``hwnas eval`` end to end on a tiny synthetic CIFAR-10 binary distribution.

The data here is synthetic on purpose (the command's plumbing is under test, not accuracy); the
real archive is covered by tests/data/test_cifar.py.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from hwnas.cli.train import app
from hwnas.errors import HwnasError

# Longer than a file name may be (255 bytes), like every full FBNet arch string; the 30 skip
# blocks keep the shape, so they are identities and cost nothing to train.
ARCH = "r32:stem_k3_c8_s2:ir_k3_e1_c8_s1:" + "skip_c8_s1:" * 30 + "ir_k3_e3_c16_s2:head_c32_n10"


def _write_binary_distribution(folder, per_class: int = 3) -> None:
    """Five train batches and a test batch of per_class images of each class (3073-byte records)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
        pixels = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        np.concatenate([labels[:, None], pixels], axis=1).tofile(folder / f"{name}.bin")


@pytest.fixture()
def cifar_folder(tmp_path):
    _write_binary_distribution(tmp_path / "cifar" / "cifar-10-batches-bin")
    return tmp_path / "cifar"


def test_train_then_eval_one_epoch(tmp_path, cifar_folder):
    runner = CliRunner()
    run = tmp_path / "run"
    trained = runner.invoke(app, [
        "train", ARCH, "--cifar", str(cifar_folder), "--epochs", "1", "--subset-per-class", "4",
        "--test-per-class", "2", "--batch-size", "8", "--out", str(run), "--threads", "1",
        "--seed", "2",
    ])
    assert trained.exit_code == 0, trained.output
    result = json.loads((run / "result.json").read_text())
    assert result["epochs"] == 1 and result["arch"] == ARCH and result["train_images"] == 40
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"]["subset_per_class"] == 4 and config["command"] == "train"
    assert config["data"]["test_images"] == 20
    assert f"final top-1 {result['final_top1']:.2f} %" in trained.output

    evaluated = runner.invoke(app, ["eval", str(run), "--cifar", str(cifar_folder),
                                    "--test-per-class", "2", "--seed", "2", "--threads", "1"])
    assert evaluated.exit_code == 0, evaluated.output
    top1 = float(re.search(r"top-1 ([0-9.]+) % on 20 test images", evaluated.output).group(1))
    assert top1 == pytest.approx(result["final_top1"], abs=0.006)  # same weights, same images
    whole = runner.invoke(app, ["eval", str(run / "checkpoint.pt"), "--cifar", str(cifar_folder)])
    assert "on 30 test images" in whole.output, whole.output

    again = runner.invoke(app, ["train", ARCH, "--cifar", str(cifar_folder), "--epochs", "1",
                                "--out", str(run), "--threads", "1"])
    assert isinstance(again.exception, HwnasError)  # the root CLI prints it and exits 2


def test_wrong_class_count_is_a_user_error(tmp_path, cifar_folder):
    result = CliRunner().invoke(app, [
        "train", ARCH.replace("n10", "n100"), "--cifar", str(cifar_folder),
        "--out", str(tmp_path / "run"),
    ])
    assert isinstance(result.exception, HwnasError)
    assert "100 classes" in str(result.exception)


def test_an_architecture_at_another_resolution_trains_on_resized_images(tmp_path, cifar_folder):
    """A DMasking search may derive a 24 px network: training resizes CIFAR-10 to it."""
    run = tmp_path / "run24"
    trained = CliRunner().invoke(app, [
        "train", ARCH.replace("r32:", "r24:"), "--cifar", str(cifar_folder), "--epochs", "1",
        "--subset-per-class", "2", "--test-per-class", "2", "--batch-size", "4",
        "--out", str(run), "--threads", "1",
    ])
    assert trained.exit_code == 0, trained.output
    assert "resizing CIFAR-10 images to 24x24" in trained.output
    assert json.loads((run / "result.json").read_text())["arch"].startswith("r24:")


def test_an_nb201_cell_string_trains_as_the_benchmarks_network(tmp_path, cifar_folder):
    """The official NAS-Bench-201 string is an ARCH: `hwnas train` builds its network."""
    cell = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    run = tmp_path / "nb201"
    trained = CliRunner().invoke(app, [
        "train", cell, "--cifar", str(cifar_folder), "--epochs", "1", "--subset-per-class", "2",
        "--test-per-class", "1", "--batch-size", "10", "--out", str(run), "--threads", "1",
    ])
    assert trained.exit_code == 0, trained.output
    result = json.loads((run / "result.json").read_text())
    assert result["arch"].startswith("r32:stem_k3_c16_s1_noact:cell_c16_3n1snp:")
    assert result["arch"].endswith("res_c64_s2:" + "cell_c64_3n1snp:" * 5 + "head_c64_n10_noconv")
