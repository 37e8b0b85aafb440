"""HW-NAS-Bench FBNet device tables: exact network sums, the cost interface, space checks."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from hwnas.cost.device_table import DEVICE_NAMES, load_device_table
from hwnas.data.paths import data_file
from hwnas.data.tables import load_fbnet_latency
from hwnas.errors import HwnasError
from hwnas.spaces import get_space

SPACE = get_space("fbnet-cifar100")


@pytest.mark.parametrize("device", DEVICE_NAMES)
def test_reproduces_all_5000_hwnasbench_sums(device):
    samples = load_fbnet_latency()
    table = load_device_table(device)
    reference = samples.column(f"hwnb_lut_cifar100_{device}_latency_ms")
    assert np.abs(table.costs_choices(samples.choices) - reference).max() < 1e-6


@pytest.mark.parametrize("device", DEVICE_NAMES)
def test_official_notebook_examples(device):
    """HW-NAS-Bench example.ipynb outputs for [0]*22, [0]*21+[1], [0]*20+[1,1] (cifar100)."""
    examples = json.loads(data_file("hwnasbench_reference_examples.json").read_text())
    rows = [row for row in examples["fbnet"] if row["dataset"] == "cifar100"]
    assert len(rows) == 3
    table = load_device_table(device)
    for row in rows:
        arch = SPACE.to_arch(row["op_idx_list"])
        assert table.cost(arch) == pytest.approx(row["metrics"][f"{device}_latency"], abs=1e-9)


def test_cost_interface_agrees_with_vectorised_and_matrix():
    table = load_device_table("pixel3")
    samples = load_fbnet_latency()
    matrix = table.layer_cost_matrix(SPACE)
    assert matrix.constant == table.base and (matrix.matrix[:, 0] == 0).all()
    archs = [SPACE.to_arch(choices) for choices in samples.choices[:20]]
    costs = table.costs(archs)
    assert np.allclose(costs, table.costs_choices(samples.choices[:20]), atol=1e-9)
    assert np.allclose(costs, [matrix.total(c) for c in samples.choices[:20]], atol=1e-9)
    assert table.unit == "ms" and table.name == "pixel3 latency"


def test_refuses_other_spaces_and_class_counts():
    table = load_device_table("raspi4")
    cifar10_arch = get_space("fbnet-cifar").to_arch([0] * 22)
    with pytest.raises(HwnasError, match="'fbnet-cifar100' .*10 classes.*allow_num_classes"):
        table.cost(cifar10_arch)
    with pytest.raises(HwnasError, match="'fbnet-cifar100'.*outside it \\(64 px\\)"):
        table.cost(replace(SPACE.to_arch([0] * 22), resolution=64))
    with pytest.raises(HwnasError, match="1 input channels"):
        table.cost(replace(SPACE.to_arch([0] * 22), in_channels=1))
    with pytest.raises(HwnasError, match="space 'fbnet-imagenet'"):
        table.layer_cost_matrix(get_space("fbnet-imagenet"))
    with pytest.raises(HwnasError, match="space 'fbnet-cifar' .*different classes"):
        table.layer_cost_matrix(get_space("fbnet-cifar"))


def test_class_mismatch_opt_in_prices_the_100_class_network():
    table = load_device_table("eyeriss", allow_num_classes_mismatch=True)
    choices = [3] * 22
    cifar10 = get_space("fbnet-cifar")
    assert table.cost(cifar10.to_arch(choices)) == table.cost(SPACE.to_arch(choices))
    assert table.layer_cost_matrix(cifar10).constant == table.base


def test_bad_inputs():
    with pytest.raises(HwnasError, match="unknown device table 'edgegpu'"):
        load_device_table("edgegpu")
    table = load_device_table("fpga")
    with pytest.raises(HwnasError, match=r"0..8"):
        table.costs_choices(np.full((2, 22), 9))
    with pytest.raises(HwnasError, match=r"\[N, 22\]"):
        table.costs_choices(np.zeros((2, 21), dtype=int))
