"""The masked supernet: one-hot weights give exactly the plain network of those choices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from .masking_helpers import tiny_masking_space
from hwnas.arch.blocks import build_block
from hwnas.data.batches import resize_image_arrays, resize_images
from hwnas.dnas.masking import MaskedSuperNet, ResolutionMixer, prefix_masks
from hwnas.dnas.supernet import gumbel_softmax_sample
from hwnas.errors import HwnasError
from hwnas.spaces import get_space


def supernet_and_images(space, seed=0, batch=3):
    torch.manual_seed(seed)
    supernet = MaskedSuperNet(space)
    # Non-trivial BN statistics and affine terms, so a leaking masked channel would show.
    for module in supernet.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    images = torch.randn(batch, 3, space.resolution, space.resolution)
    return supernet, images


def child_output(supernet, choices, images, train=False):
    child = supernet.extract_child(choices)
    child.train(train)
    resolution = supernet.space.resolutions[choices[0]]
    return child(resize_images(images, resolution))


def test_prefix_masks_keep_the_first_channels():
    assert prefix_masks([1, 3], 4).tolist() == [[1, 0, 0, 0], [1, 1, 1, 0]]


@pytest.mark.parametrize("seed", range(6))
def test_one_hot_supernet_equals_the_plain_network_of_the_choices(seed):
    space = tiny_masking_space()
    supernet, images = supernet_and_images(space, seed)
    supernet.eval()
    choices = tuple(space.decisions.sample(1, np.random.default_rng(seed))[0])
    weights = supernet.one_hot(choices)
    block_rows = 1 + space.num_stages
    with torch.no_grad():
        soft = supernet(images, weights)
        sampled = supernet(images, weights, list(choices[block_rows:]))
        plain = child_output(supernet, choices, images)
    torch.testing.assert_close(soft, plain, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(sampled, plain, rtol=1e-4, atol=1e-5)


def test_one_hot_equals_plain_in_train_mode_at_the_largest_resolution():
    """BatchNorm batch statistics are per channel, so channel masks are exact in train mode too
    (at smaller resolutions the padded zeros enter the statistics: module docstring)."""
    space = tiny_masking_space()
    supernet, images = supernet_and_images(space, 3, batch=4)
    for choices in [(1, 0, 1, 1, 0, 2), (1, 1, 2, 0, 1, 1), (1, 0, 0, 0, 0, 2)]:
        supernet.train()
        masked = supernet(images, supernet.one_hot(choices))
        plain = child_output(supernet, choices, images, train=True)
        torch.testing.assert_close(masked, plain, rtol=1e-4, atol=1e-5)


def test_masked_block_equals_the_plain_block_of_that_width():
    """Layer 0 opens stage 1 at stride 1: with 8 channels in and out it has a residual, with
    4 out it has none; both come from the one 8 -> 8 block."""
    space = tiny_masking_space()
    supernet, _ = supernet_and_images(space, 1)
    supernet.eval()
    x = torch.randn(2, 8, 8, 8)
    ones = torch.ones(1, 1, 1, 1)
    layer = supernet.layers[0]
    for width_index, width in enumerate(space.stage_widths[0]):
        for candidate, name in enumerate(space.layers[0].candidates):
            out_weights = torch.nn.functional.one_hot(torch.tensor(width_index), 2).float()
            block_weights = torch.nn.functional.one_hot(torch.tensor(candidate), 2).float()
            with torch.no_grad():
                masked = layer(x, block_weights, torch.ones(1), out_weights,
                               supernet.width_masks_0, None, ones, ones)
            choices = [1, width_index, 0, candidate, 0, 0]
            plain = build_block(8, supernet.space.to_arch(choices).blocks[0])
            state = {key[len("blocks.0."):]: value
                     for key, value in supernet.child_state_dict(choices).items()
                     if key.startswith("blocks.0.")}
            plain.load_state_dict(state)
            plain.eval()
            with torch.no_grad():
                expected = plain(x)
            assert masked.shape[1] == 8 and expected.shape[1] == width
            torch.testing.assert_close(masked[:, :width], expected, rtol=1e-4, atol=1e-5)
            assert torch.count_nonzero(masked[:, width:]) == 0


def test_resolution_mixer_with_one_hot_weights_is_plain_resizing():
    mixer = ResolutionMixer((24, 28, 32))
    images = torch.randn(2, 3, 32, 32)
    for index, resolution in enumerate((24, 28, 32)):
        weights = torch.nn.functional.one_hot(torch.tensor(index), 3).float()
        mixed = mixer(images, weights)
        assert mixed.shape == images.shape
        torch.testing.assert_close(mixer.extract(mixed, resolution),
                                   resize_images(images, resolution))
        assert torch.count_nonzero(mixed[..., resolution:, :]) == 0
        assert torch.count_nonzero(mixed[..., :, resolution:]) == 0
    soft = torch.tensor([0.2, 0.3, 0.5])
    expected = sum(weight * mixer(images, torch.nn.functional.one_hot(torch.tensor(i), 3).float())
                   for i, weight in enumerate(soft))
    torch.testing.assert_close(mixer(images, soft), expected)
    with pytest.raises(HwnasError, match="takes 32 px"):
        mixer(torch.randn(1, 3, 24, 24), soft)


def test_dmasking_cifar_supernet_equals_children_at_every_resolution():
    space = get_space("dmasking-cifar")
    supernet, images = supernet_and_images(space, 0, batch=2)
    supernet.eval()
    rng = np.random.default_rng(5)
    for resolution_index in range(len(space.resolutions)):
        choices = list(tuple(space.decisions.sample(1, rng)[0]))
        choices[0] = resolution_index
        block_rows = 1 + space.num_stages
        with torch.no_grad():
            masked = supernet(images, supernet.one_hot(choices), choices[block_rows:])
            plain = child_output(supernet, choices, images)
        torch.testing.assert_close(masked, plain, rtol=1e-3, atol=1e-4)


def test_gradients_reach_every_real_option_and_no_padding():
    space = tiny_masking_space()
    supernet, images = supernet_and_images(space, 2)
    generator = torch.Generator().manual_seed(0)
    for mode in ("soft", "sampled"):
        sample = gumbel_softmax_sample(supernet.logits(), 1.0, generator)
        supernet.theta.grad = None
        supernet.run(images, sample, mode).square().mean().backward()
        gradient = supernet.theta.grad
        assert torch.all(torch.isfinite(gradient))
        padding = torch.isinf(supernet.logit_mask)
        assert torch.all(gradient[padding] == 0)
        # widths and resolution always mix softly: every option gets a gradient
        for row in range(1 + space.num_stages):
            size = space.decisions.cardinalities.tolist()[row]
            assert torch.all(gradient[row, :size] != 0), (mode, row)


def test_probabilities_are_uniform_over_real_options_at_start():
    space = tiny_masking_space()
    probabilities = MaskedSuperNet(space).probabilities()
    for row, size in enumerate(space.decisions.cardinalities.tolist()):
        assert torch.allclose(probabilities[row, :size], torch.full((size,), 1 / size))
        assert torch.all(probabilities[row, size:] == 0)


def test_bad_mode_is_an_error():
    supernet = MaskedSuperNet(tiny_masking_space())
    sample = gumbel_softmax_sample(supernet.logits(), 1.0, torch.Generator().manual_seed(0))
    with pytest.raises(HwnasError, match="mode must be one of"):
        supernet.mixing_weights(sample, "hard")


def test_resized_image_arrays_are_the_rounded_resize():
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    resized = resize_image_arrays(images, 24, chunk=2)
    assert resized.shape == (5, 24, 24, 3) and resized.dtype == np.uint8
    expected = resize_images(torch.from_numpy(images).permute(0, 3, 1, 2).float(), 24)
    assert np.abs(resized.astype(float) - expected.permute(0, 2, 3, 1).numpy()).max() <= 0.5
    assert resize_image_arrays(images, 32) is images
