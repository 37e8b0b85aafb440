"""The reference zoo reproduces the published multiply-adds and parameter counts."""

from __future__ import annotations

import pytest
from torch import nn

from hwnas.arch.build import build_model
from hwnas.arch.spec import ArchSpec, FBNetBlock, K3SepBlock, MBV2Block, SkipBlock, SpecError
from hwnas.arch.zoo import (
    MODEL_FUNCTIONS,
    MODEL_NAMES,
    chamnet_a,
    chamnet_e,
    fbnet_a,
    mobilenet_v2_cifar,
    fbnet_b,
    fbnet_c,
    get_model_spec,
    make_divisible,
    mobilenet_v2,
)
from hwnas.cost.flops import count
from hwnas.errors import HwnasError
from hwnas.spaces.fbnet import fbnet_space

# Published MACs in millions at each model's own resolution and 1000 classes: the
# mobile-vision README for the released Caffe2 FBNets and ChamNets (papers-and-peers.md 1.5 and
# 2.2) and Sandler et al. 2018 for MobileNetV2 ("300M" multiply-adds).
PUBLISHED_MMACS = {
    "mobilenet_v2": 300.0,
    "fbnet_a": 249.4,
    "fbnet_b": 295.6,
    "fbnet_c": 383.0,
    "fbnet_b1": 286.8,
    "fbnet_c1": 374.2,
    "chamnet_a": 552.9,
    "chamnet_b": 323.3,
    "chamnet_c": 211.6,
    "chamnet_d": 120.0,
    "chamnet_e": 53.7,
    "chamnet_f": 30.8,
}
PUBLISHED_RESOLUTIONS = {"chamnet_b": 192, "chamnet_d": 192, "chamnet_e": 160, "chamnet_f": 128}


def test_model_names_cover_the_published_models():
    # mobilenet_v2_cifar has no published figure: it is MobileNetV2 with CIFAR strides.
    assert set(MODEL_NAMES) == set(PUBLISHED_MMACS) | {"mobilenet_v2_cifar"}
    assert tuple(MODEL_FUNCTIONS) == MODEL_NAMES


@pytest.mark.parametrize("name", sorted(PUBLISHED_MMACS))
def test_published_macs_within_half_a_percent(name):
    arch = get_model_spec(name)
    assert isinstance(arch, ArchSpec)
    assert arch.resolution == PUBLISHED_RESOLUTIONS.get(name, 224)
    assert arch.num_classes == 1000
    assert count(arch).macs / 1e6 == pytest.approx(PUBLISHED_MMACS[name], rel=0.005)


def test_mobilenet_v2_parameters_match_torchvision():
    # torchvision's mobilenet_v2() has 3,504,872 parameters, BN affine included.
    arch = mobilenet_v2()
    assert count(arch).params == 3_504_872
    assert sum(p.numel() for p in build_model(arch).parameters()) == 3_504_872


# Parameters of the released Caffe2 graphs, whose BN is folded into one conv bias per channel
# (papers-and-peers.md 1.5 and 2.2, computed from the released weight shapes), in millions.
PUBLISHED_FOLDED_MPARAMS = {
    "fbnet_a": 4.302, "fbnet_b": 4.795, "fbnet_c": 5.545, "fbnet_b1": 4.146, "fbnet_c1": 4.895,
    "chamnet_a": 6.26, "chamnet_b": 5.18, "chamnet_c": 3.37, "chamnet_d": 3.27,
    "chamnet_e": 2.29, "chamnet_f": 2.01,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_FOLDED_MPARAMS))
def test_released_parameter_counts_with_bn_folded(name):
    arch = get_model_spec(name)
    model = build_model(arch)
    bn_channels = sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    # Folding BN trades its two affine vectors for one conv bias per channel.
    folded = count(arch).params - bn_channels
    published = PUBLISHED_FOLDED_MPARAMS[name]
    decimals = len(str(published).split(".")[1])
    assert round(folded / 1e6, decimals) == published


@pytest.mark.parametrize(
    "width, published_mmacs",
    # TF-slim MobileNetV2 checkpoint table (224 px): 1.4 -> 582, 1.3 -> 509, 0.75 -> 209,
    # 0.5 -> 97, 0.35 -> 59 million multiply-adds.
    [(1.4, 582), (1.3, 509), (0.75, 209), (0.5, 97), (0.35, 59)],
)
def test_mobilenet_v2_width_multipliers(width, published_mmacs):
    assert count(mobilenet_v2(width_multiplier=width)).macs / 1e6 == pytest.approx(
        published_mmacs, rel=0.01
    )


def test_make_divisible_rounds_to_eight_but_not_below_ninety_percent():
    assert make_divisible(32 * 0.35) == 16  # 8 would lose more than 10 % of 11.2
    assert make_divisible(24 * 0.75) == 24  # 18 rounds to the nearest multiple: 16 or 24 -> 24
    assert make_divisible(320 * 1.4) == 448
    assert make_divisible(3) == 8
    assert mobilenet_v2(width_multiplier=0.5).head.out_channels == 1280
    assert mobilenet_v2(width_multiplier=1.4).head.out_channels == 1792


def test_options_change_only_what_they_name():
    base = mobilenet_v2()
    small = get_model_spec("mobilenet_v2", resolution=160, num_classes=10, dropout=0.0)
    assert small.blocks == base.blocks and small.stem == base.stem
    assert (small.resolution, small.num_classes, small.head.dropout) == (160, 10, 0.0)
    assert count(fbnet_a(dropout=0.0)).macs == count(fbnet_a()).macs


def test_unknown_model_names_the_name_and_lists_known():
    with pytest.raises(SpecError, match="'fbnet_z'") as error:
        get_model_spec("fbnet_z")
    assert all(name in str(error.value) for name in MODEL_NAMES)


def test_unknown_option_is_a_clear_error():
    with pytest.raises(HwnasError, match="'width'.*width_multiplier"):
        get_model_spec("mobilenet_v2", width=0.5)
    with pytest.raises(HwnasError, match="'resolution'"):
        get_model_spec("chamnet_a", resolution=224)


@pytest.mark.parametrize(
    "options, field",
    [
        ({"width_multiplier": 0}, "width_multiplier"),
        ({"width_multiplier": float("nan")}, "width_multiplier"),
        ({"dropout": 1.5}, "dropout"),
        ({"resolution": -1}, "resolution"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_bad_option_values_are_named(options, field):
    with pytest.raises(HwnasError, match=field):
        get_model_spec("mobilenet_v2", **options)


def test_fbnet_a_is_in_the_fbnet_imagenet_space_with_its_head():
    # Candidate order of the space (HW-NAS-Bench): k3_e1, k3_e1_g2, k3_e3, k3_e6, k5_e1,
    # k5_e1_g2, k5_e3, k5_e6, skip; FBNet-A's 22 positions from the released graph.
    space = fbnet_space("imagenet", head_channels=1504)
    assert space.choices_of(fbnet_a(dropout=0.0)) == (
        8, 2, 0, 8, 8, 7, 2, 4, 2, 7, 6, 1, 7, 3, 1, 6, 1, 7, 7, 6, 7, 7,
    )


def test_fbnet_b_and_c_hold_k3sep_where_released():
    def positions(arch):
        return [i for i, block in enumerate(arch.blocks) if isinstance(block, K3SepBlock)]

    # TBS3.4 is layer 1 + 4 + 3 = 8; TBS3.3 is layer 7 and TBS5.2 is layer 1 + 12 + 1 = 14.
    assert positions(fbnet_b()) == [8]
    assert positions(fbnet_c()) == [7, 14]
    assert not fbnet_space("imagenet").contains(fbnet_b(dropout=0.0))


def test_fbnet_e1_blocks_keep_their_first_pointwise_conv():
    blocks = [block for block in fbnet_b().blocks if isinstance(block, FBNetBlock)]
    assert all(block.first_pointwise for block in blocks)
    assert isinstance(fbnet_a().blocks[0], SkipBlock)  # identity 16 -> 16 at TBS1
    assert count(fbnet_a()).per_layer[1][1].macs == 0


def test_chamnet_first_pointwise_is_the_released_extra_conv():
    released, pure = chamnet_a(), chamnet_a(first_pointwise=False)
    assert all(isinstance(block, MBV2Block) for block in pure.blocks)
    assert isinstance(released.blocks[0], FBNetBlock) and released.blocks[1:] == pure.blocks[1:]
    # The extra conv is a 32 -> 32 1x1 at 112 px.
    assert count(released).macs - count(pure).macs == 32 * 32 * 112 * 112


def test_mobilenet_v2_cifar_differs_from_imagenet_only_by_strides():
    cifar, imagenet = mobilenet_v2_cifar(width_multiplier=0.5), mobilenet_v2(width_multiplier=0.5)
    assert (cifar.resolution, cifar.num_classes, cifar.stem.stride) == (32, 10, 1)
    assert [b.out_channels for b in cifar.blocks] == [b.out_channels for b in imagenet.blocks]
    assert sum(b.stride == 2 for b in cifar.blocks) == 3  # 32 px -> 4x4, like fbnet-cifar


def test_chamnet_e_decodes_the_split_64_group():
    widths_and_strides = [(block.out_channels, block.stride) for block in chamnet_e().blocks]
    assert widths_and_strides[5:9] == [(64, 2), (64, 1), (64, 1), (64, 1)]
    assert len(widths_and_strides) == 1 + 1 + 3 + 4 + 2 + 1


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_docstrings_cite_source_and_differences(name):
    doc = MODEL_FUNCTIONS[name].__doc__
    assert "et al." in doc and "Differences" in doc
