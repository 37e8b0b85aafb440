import json

import numpy as np
import pytest
import torch
import torch.nn.functional as functional

from hwnas.dnas.nested import NestedLayer, diagonal_blocks
from hwnas.dnas.supernet import SuperNet
from hwnas.errors import HwnasError

from .dnas_helpers import TableCost, run_dnas, synthetic_batches, tiny_space

CANDIDATES = ("k3_e1", "k3_e1_g2", "k5_e3", "k5_e6", "skip")


@pytest.fixture
def nested_space():
    return tiny_space(CANDIDATES)


def randomised(supernet, seed=0):
    """Random BN scales, shifts and statistics: no candidate starts as the identity."""
    generator = torch.Generator().manual_seed(seed)
    for module in supernet.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor in (module.weight, module.bias, module.running_mean):
                tensor.data.copy_(torch.randn(tensor.shape, generator=generator))
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator)
                                     + 0.5)
    return supernet


def all_paths(space):
    return [tuple(int(c) for c in np.unravel_index(index, (space.num_candidates,) * 3))
            for index in range(space.num_candidates ** 3)]


def test_every_path_is_the_ordinary_network_with_the_sliced_weights(nested_space):
    torch.manual_seed(0)
    supernet = randomised(SuperNet(nested_space, "nested")).eval()
    images = synthetic_batches(1, 4, seed=3)[0][0]
    ones = torch.ones(nested_space.num_layers, nested_space.num_candidates)
    for path in all_paths(nested_space):
        child = supernet.extract_child(path).eval()
        with torch.no_grad():
            torch.testing.assert_close(supernet(images, ones, path), child(images),
                                       rtol=1e-5, atol=1e-5)


def test_candidates_are_slices_of_one_block(nested_space):
    torch.manual_seed(0)
    supernet = randomised(SuperNet(nested_space, "nested"))  # no zero-gamma: gradients flow
    layer = supernet.layers[2]  # 16 -> 16, stride 1
    k5_e6 = CANDIDATES.index("k5_e6")
    k5_e3 = CANDIDATES.index("k5_e3")
    k3_e1 = CANDIDATES.index("k3_e1")
    largest = layer.child_state_dict(k5_e6)["depthwise.0.weight"]
    assert largest.shape == (96, 1, 5, 5)
    torch.testing.assert_close(layer.child_state_dict(k5_e3)["depthwise.0.weight"],
                               largest[:48])
    torch.testing.assert_close(layer.child_state_dict(k3_e1)["depthwise.0.weight"],
                               largest[:16, :, 1:4, 1:4])
    # one SGD step on the k3_e1 path moves weights that the k5_e6 path uses
    optimizer = torch.optim.SGD(supernet.weight_parameters(), lr=0.1)
    images, labels = synthetic_batches(1, 8)[0]
    path = (0, 0, k3_e1)
    ones = torch.ones(nested_space.num_layers, nested_space.num_candidates)
    functional.cross_entropy(supernet(images, ones, path), labels).backward()
    optimizer.step()
    after = layer.child_state_dict(k5_e6)["depthwise.0.weight"]
    assert not torch.equal(after[:16, :, 1:4, 1:4], largest[:16, :, 1:4, 1:4])
    assert torch.equal(after[16:], largest[16:])


def test_diagonal_blocks_compute_the_grouped_conv_of_the_masked_dense_weight():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(12, 8, 1, 1, generator=generator)
    images = torch.randn(2, 6, 5, 5, generator=generator)
    mask = torch.zeros(6, 6, 1, 1)
    mask[:3, :3] = mask[3:, 3:] = 1
    grouped = functional.conv2d(images, diagonal_blocks(weight, 6, 6, 2), groups=2)
    dense = functional.conv2d(images, weight[:6, :6] * mask)
    torch.testing.assert_close(grouped, dense)


def test_soft_mode_mixes_the_candidates(nested_space):
    torch.manual_seed(0)
    layer = randomised(SuperNet(nested_space, "nested")).eval().layers[2]
    images = torch.randn(2, 16, 4, 4)
    weights = torch.softmax(torch.randn(len(CANDIDATES)), dim=0)
    with torch.no_grad():
        mixed = layer(images, weights)
        expected = sum(weight * layer.candidate(images, index)
                       for index, weight in enumerate(weights))
    torch.testing.assert_close(mixed, expected)


def test_a_nested_layer_holds_the_convolutions_of_its_largest_candidate_only(nested_space):
    independent, nested = SuperNet(nested_space), SuperNet(nested_space, "nested")
    largest = CANDIDATES.index("k5_e6")
    for mixed, shared in zip(independent.layers, nested.layers):
        convolutions = [module.weight.numel() for module in mixed.candidates[largest].modules()
                        if isinstance(module, torch.nn.Conv2d)]
        assert shared.expand_weight.numel() + shared.depthwise_weight.numel() + \
            shared.project_weight.numel() == sum(convolutions)
    with pytest.raises(HwnasError, match="weight_sharing must be one of"):
        SuperNet(nested_space, "partial")
    from hwnas.arch.spec import MBV2Block

    with pytest.raises(HwnasError, match="FBNet and skip candidates only"):
        NestedLayer(8, [MBV2Block(out_channels=8, expansion=6, kernel_size=3, stride=1)])


def test_nested_search_runs_records_its_sharing_and_refuses_an_independent_warm_start(
        nested_space, tmp_path):
    cost = TableCost(nested_space, np.arange(15, dtype=float).reshape(3, 5))
    batches = synthetic_batches(4, 8)
    settings = dict(epochs=2, warmup_epochs=1, checkpoint_every=None, plots=False,
                    num_samples=2)
    result = run_dnas(nested_space, cost, batches, batches, run_dir=tmp_path / "nested",
                      weight_sharing="nested", **settings)
    config = json.loads((tmp_path / "nested" / "config.json").read_text())
    assert config["search"]["weight_sharing"] == "nested"
    assert len(result.argmax.choices) == 3
    run_dnas(nested_space, cost, batches, batches, run_dir=tmp_path / "independent", **settings)
    with pytest.raises(HwnasError, match="weight sharing, 'nested'"):
        run_dnas(nested_space, cost, batches, batches, run_dir=tmp_path / "warm",
                 weight_sharing="nested",
                 warm_start=tmp_path / "independent" / "checkpoint.pt", **settings)


@pytest.mark.parametrize("weight_sharing", ["independent", "nested"])
def test_residual_scale_is_the_initial_last_bn_scale_of_residual_candidates(nested_space,
                                                                           weight_sharing):
    path = (0, 0, CANDIDATES.index("k5_e3"))  # layer 2 keeps its shape: residual
    for scale in (0.0, 0.5):
        child = SuperNet(nested_space, weight_sharing, residual_scale=scale).extract_child(path)
        assert torch.all(child.blocks[2].project[1].weight == scale)
        assert torch.all(child.blocks[1].project[1].weight == 1.0)  # 8 -> 16: no residual


def test_a_negative_residual_scale_is_refused(nested_space, tmp_path):
    cost = TableCost(nested_space, np.ones((3, 5)))
    batches = synthetic_batches(1, 8)
    with pytest.raises(HwnasError, match="residual_scale"):
        run_dnas(nested_space, cost, batches, batches, run_dir=tmp_path / "run", epochs=1,
                 residual_scale=-1.0)
