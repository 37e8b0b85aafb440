"""NAS-Bench-201 networks built from cells: the skeleton, counts against the published values,
the string forms, ONNX parity, and training steps that change the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.arch.build import build_model, walk
from hwnas.arch.export import max_abs_difference, onnx_bytes
from hwnas.arch.load import load_arch
from hwnas.arch.spec import ArchSpec, NB201Cell, ResidualBlock
from hwnas.cli.arch import EXPORT_TOLERANCE, build_network
from hwnas.cost.flops import count
from hwnas.errors import HwnasError, SpecError
from hwnas.spaces import get_space
from hwnas.spaces.nb201 import NB201_OPS, cell_of_network, format_arch_str, nb201_network

ALL_CONV3 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
             "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
INDEX_0 = ("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+"
           "|nor_conv_1x1~0|skip_connect~1|skip_connect~2|")

# NAS-Bench-201 API cost info (FLOPs in M, params in M) of the extremes of each dataset's
# networks, as quoted in EvoXBench's and MO-HPOBench's NB201 bounds: (resolution, classes):
# (min FLOPs, max FLOPs, min params, max params). The minimum is any cell without a conv, the
# maximum the all-nor_conv_3x3 cell. NB201's FLOPs add the classifier's bias (num_classes) to
# the multiply-adds hwnas counts, hence the 1e-5 M tolerance beside the 1 % criterion.
PUBLISHED = {
    "cifar10": ((32, 10), (7.78305, 220.11969, 0.073306, 1.531546)),
    "cifar100": ((32, 100), (7.7889, 220.12554, 0.079156, 1.537396)),
    "ImageNet16-120": ((16, 120), (1.9534, 55.03756, 0.080456, 1.538696)),
}


def test_the_skeleton_is_the_benchmarks():
    arch = load_arch(ALL_CONV3)
    cells = [block for block in arch.blocks if isinstance(block, NB201Cell)]
    reductions = [block for block in arch.blocks if isinstance(block, ResidualBlock)]
    assert [cell.out_channels for cell in cells] == [16] * 5 + [32] * 5 + [64] * 5
    assert [(block.out_channels, block.stride) for block in reductions] == [(32, 2), (64, 2)]
    assert arch.stem.activation == "none" and not arch.head.conv and arch.num_classes == 10
    assert [layer.out_size for layer in walk(arch)][-2] == 8  # 32 -> 16 -> 8 px


@pytest.mark.parametrize("dataset", sorted(PUBLISHED))
def test_flops_and_params_match_the_published_values(dataset):
    (resolution, classes), (min_flops, max_flops, min_params, max_params) = PUBLISHED[dataset]
    for ops, flops, params in ((["nor_conv_3x3"] * 6, max_flops, max_params),
                               (["none"] * 6, min_flops, min_params),
                               (["skip_connect", "avg_pool_3x3"] * 3, min_flops, min_params)):
        arch = nb201_network(ops, num_classes=classes, resolution=resolution)
        counted = count(arch)
        assert counted.macs / 1e6 == pytest.approx(flops - classes / 1e6, abs=1e-5)
        assert counted.macs / 1e6 == pytest.approx(flops, rel=0.01)
        assert counted.params / 1e6 == pytest.approx(params, abs=5e-7)
        built = sum(p.numel() for p in build_model(arch).parameters())
        assert built == counted.params  # the spec's count is the module's


def test_a_cell_of_two_3x3_convs_matches_a_published_cost_info():
    """NB201 cost info (CIFAR-10) 78.56193 MFLOPs / 0.559386 M params, the example quoted in an
    NB201 evaluator's comments, which do not name the cell: every cell with two 3x3 convs and
    no 1x1 conv has these counts (NB201 counts every edge's conv, live or not), and hwnas
    reproduces both to every printed digit."""
    for cell in ("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
                 "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"):
        counted = count(load_arch(cell))
        assert counted.macs / 1e6 == pytest.approx(78.56193 - 10 / 1e6, abs=1e-5)
        assert counted.params / 1e6 == pytest.approx(0.559386, abs=5e-7)


@pytest.mark.parametrize("ops, live", [
    (("nor_conv_3x3",) * 6, [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]),
    (("none",) * 6, []),
    (("nor_conv_3x3",) * 3 + ("none",) * 3, []),  # nothing reaches the output
    (("none", "none", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_3x3"),
     [(0, 3)]),  # nodes 1 and 2 are never reached
    (("nor_conv_3x3", "none", "nor_conv_3x3", "skip_connect", "none", "none"),
     [(0, 3)]),  # nodes 1 and 2 never reach the output
    (("avg_pool_3x3", "none", "skip_connect", "none", "none", "nor_conv_1x1"),
     [(0, 1), (1, 2), (2, 3)]),
])
def test_live_edges_are_those_between_the_input_and_the_output(ops, live):
    assert [(source, target) for source, target, _ in NB201Cell(16, ops).live_edges()] == live


def test_dead_edges_are_not_computed():
    """A cell whose convs never reach the output is the identity (a skip), in torch and ONNX."""
    cell = ("nor_conv_3x3", "none", "nor_conv_3x3", "skip_connect", "none", "none")
    model = build_model(nb201_network(cell, cells=1)).eval()
    x = torch.randn(1, 16, 8, 8)
    assert torch.equal(model.blocks[0](x), x)


def test_counts_agree_with_the_modules_on_random_cells():
    space = get_space("nb201")
    for choices in space.decisions.sample(20, np.random.default_rng(0)):
        arch = space.to_arch(choices)
        assert count(arch).params == sum(p.numel() for p in build_model(arch).parameters())


def test_macs_agree_with_forward_hooks():
    arch = load_arch(INDEX_0)
    model = build_model(arch).eval()
    total = []

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            total.append(output.shape[2] * output.shape[3] * module.weight.numel())
        elif isinstance(module, torch.nn.Linear):
            total.append(module.weight.numel())

    for module in model.modules():
        module.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    assert sum(total) == count(arch).macs


def test_the_official_string_the_compact_string_and_json_name_one_network():
    arch = load_arch(INDEX_0)
    assert ArchSpec.from_string(arch.to_string()) == arch
    assert ArchSpec.from_dict(arch.to_dict()) == arch
    assert "cell_c16_p1s1ss" in arch.to_string() and "head_c64_n10_noconv" in arch.to_string()
    space = get_space("nb201")
    choices = space.parse(INDEX_0)
    assert space.to_arch(choices) == arch and space.choices_of(arch) == choices
    assert format_arch_str([NB201_OPS.index(op) for op in cell_of_network(arch)]) == INDEX_0
    wider = load_arch(INDEX_0, num_classes=100, resolution=16)
    assert (wider.num_classes, wider.resolution) == (100, 16)
    assert not space.contains(wider) and cell_of_network(wider) == cell_of_network(arch)
    assert not space.contains(get_space("fbnet-cifar").to_arch([0] * 22))


@pytest.mark.parametrize("text, words", [
    ("|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation"),
    ("|none~0|+|none~0|", "node parts"),
    ("r32:stem_k3_c16_s1_noact:cell_c16_33x333:head_c16_n10_noconv", "6 op letters"),
    ("r32:stem_k3_c16_s1:cell_c24_333333:head_c24_n10", "must equal its input's 16"),
    ("r32:stem_k3_c16_s1:cell_c16_333333:head_c32_n10_noconv", "the last block's 16"),
    ("r32:stem_k3_c16_s1_relu6_noact:head_c32_n10", "exclude each other"),
])
def test_bad_cells_are_one_error_naming_the_part(text, words):
    with pytest.raises(HwnasError, match=words):
        load_arch(text)


def test_an_absent_node_and_a_cut_cell_give_zeros_not_errors():
    cut = nb201_network(["none"] * 6, cells=1)
    model = build_model(cut).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_onnx_export_matches_torch_on_random_cells():
    space = get_space("nb201")
    rng = np.random.default_rng(1)
    for index, choices in enumerate([space.parse(ALL_CONV3), space.parse(INDEX_0),
                                     *space.decisions.sample(3, rng)]):
        network = build_network(space.to_arch(choices), seed=index)
        model = onnx_bytes(network, (1, 3, 32, 32), opset=17, dynamic_batch=True)
        assert max_abs_difference(network, model, batch=2, seed=index) <= EXPORT_TOLERANCE


def test_a_training_step_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model(nb201_network(["nor_conv_3x3", "skip_connect", "nor_conv_1x1",
                                       "avg_pool_3x3", "nor_conv_3x3", "none"], cells=1))
    inputs, labels = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_choices_of_refuses_another_skeleton():
    with pytest.raises(SpecError, match="not an NB201 network"):
        cell_of_network(get_space("fbnet-cifar").to_arch([0] * 22))
