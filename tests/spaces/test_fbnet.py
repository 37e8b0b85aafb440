import pytest

from hwnas.arch.spec import FBNetBlock, SkipBlock, SpecError
from hwnas.spaces import get_space
from hwnas.spaces.fbnet import fbnet_space


def test_fbnet_space_shape_follows_the_paper():
    space = fbnet_space("imagenet")
    assert space.num_layers == 22 and space.num_candidates == 9
    assert space.decisions.size == 9**22
    assert [width for width, _ in space.layer_shapes][:5] == [16, 24, 24, 24, 24]
    strides = [stride for _, stride in space.layer_shapes]
    assert sum(strides) == 22 + 4  # four stride-2 stages in the ImageNet setting
    cifar = fbnet_space("cifar")
    assert (cifar.resolution, cifar.stem.stride, cifar.head.out_channels) == (32, 1, 1504)
    assert sum(stride == 2 for _, stride in cifar.layer_shapes) == 3


def test_candidate_blocks_and_uniform_arch():
    space = fbnet_space("cifar")
    skip = space.uniform_arch("skip")
    assert all(isinstance(block, SkipBlock) for block in skip.blocks)
    big = space.uniform_arch("k5_e6")
    assert all(isinstance(b, FBNetBlock) and (b.kernel_size, b.expansion) == (5, 6)
               for b in big.blocks)
    with pytest.raises(SpecError, match="k7_e6"):
        space.uniform_arch("k7_e6")


def test_arch_outside_the_space_is_named():
    space = fbnet_space("cifar")
    other = fbnet_space("imagenet").to_arch([0] * 22)
    with pytest.raises(SpecError, match="not in space 'fbnet-cifar'"):
        space.choices_of(other)
    with pytest.raises(SpecError, match="needs 22 choices"):
        space.to_arch([0] * 3)


def test_transition_layers_are_the_ones_that_change_width_or_stride():
    space = get_space("fbnet-cifar")
    assert space.transition_layers == (1, 5, 9, 13, 17, 21)  # 16->24, s2, s2, 64->112, s2, ->352
    # ImageNet strides 1/2/2/2/1/2/1: layer 1 both widens and strides.
    assert get_space("fbnet-imagenet").transition_layers == (1, 5, 9, 13, 17, 21)
