"""ONNX export: exported networks run in ONNX Runtime and match torch to 1e-4.

The networks come from ``hwnas.cli.arch.build_network`` (random init, BN statistics set from one
random batch): with fresh BN statistics the logits of a deep network are ~1e-8 and any graph
would pass an absolute tolerance, so each test also checks that the logits are O(0.1-1).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.arch.export import export_onnx, max_abs_difference, onnx_bytes, onnx_session
from hwnas.arch.spec import ArchSpec
from hwnas.arch.zoo import get_model_spec
from hwnas.cli.arch import EXPORT_TOLERANCE, build_network
from hwnas.spaces import get_space

from ..helpers import sample_archs

# A small network with every kind of FBNet-space layer (e1, grouped e6, a strided skip).
SMALL = "r32:stem_k3_c16_s1:ir_k3_e1_c16_s1:ir_k5_e6_g2_c24_s2:skip_c32_s2:head_c64_n10"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine torch's default threads spin against
    other processes and these tests take 10x longer (measured: 181 s vs 12 s for the ten)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _largest_logit(network, batch: int = 2) -> float:
    arch = network.arch
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch, arch.in_channels, arch.resolution, arch.resolution,
                         generator=generator)
    with torch.no_grad():
        return float(network(inputs).abs().max())


def test_fbnet_c_export_matches_torch_with_a_free_batch_dimension(tmp_path):
    arch = get_model_spec("fbnet_c")
    assert (arch.resolution, arch.num_classes) == (224, 1000)
    network = build_network(arch, seed=0)
    assert _largest_logit(network) > 0.05  # not a vacuous comparison
    path = export_onnx(network, (1, 3, 224, 224), tmp_path / "fbnet_c.onnx", opset=17)
    assert max_abs_difference(network, path, batch=2) <= EXPORT_TOLERANCE

    # Exported at batch 1, run at batch 3: the batch dimension is free.
    session = onnx_session(path)
    inputs = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    outputs = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]
    with torch.no_grad():
        expected = network(inputs).numpy()
    assert outputs.shape == (3, 1000)
    assert np.max(np.abs(outputs - expected)) <= EXPORT_TOLERANCE


def test_ten_random_fbnet_imagenet_samples_match_torch():
    space = get_space("fbnet-imagenet")
    archs = sample_archs(space, 10, seed=2019)
    assert len(set(archs)) == 10
    for index, arch in enumerate(archs):
        assert (arch.resolution, arch.num_classes) == (224, 1000)
        network = build_network(arch, seed=index)
        model = onnx_bytes(network, (1, 3, 224, 224), opset=17, dynamic_batch=True)
        difference = max_abs_difference(network, model, batch=2, seed=index)
        assert difference <= EXPORT_TOLERANCE, (arch.to_string(), difference)
        assert _largest_logit(network) > 0.05, arch.to_string()


def test_build_network_is_seeded_and_leaves_the_global_rng_alone():
    arch = ArchSpec.from_string(SMALL)
    state = torch.random.get_rng_state()
    first = build_network(arch, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = build_network(arch, seed=5)
    other = build_network(arch, seed=6)
    first_state, second_state = first.state_dict(), second.state_dict()
    assert all(torch.equal(first_state[key], second_state[key]) for key in first_state)
    assert not torch.equal(first.stem[0].weight, other.stem[0].weight)
    assert not first.training
    # Calibrated statistics: not the fresh (0, 1) ones.
    norm = first.stem[1]
    assert not torch.allclose(norm.running_var, torch.ones_like(norm.running_var))


def test_the_check_detects_a_mismatch():
    """A network whose ONNX differs (here: a perturbed torch copy) is detected by the check."""
    network = build_network(ArchSpec.from_string(SMALL), seed=0)
    model = onnx_bytes(network, (1, 3, 32, 32), opset=17, dynamic_batch=True)
    with torch.no_grad():
        network.head.classifier.bias += 1e-3
    assert max_abs_difference(network, model, batch=1) > EXPORT_TOLERANCE


@pytest.mark.parametrize("opset", [11])
def test_cifar_network_exports_at_an_older_opset(opset):
    arch = get_space("fbnet-cifar").to_arch([7, 1, 8, 5, 2] * 4 + [6, 4])
    network = build_network(arch, seed=opset)
    model = onnx_bytes(network, (2, 3, 32, 32), opset=opset, dynamic_batch=True)
    assert max_abs_difference(network, model, batch=4) <= EXPORT_TOLERANCE
