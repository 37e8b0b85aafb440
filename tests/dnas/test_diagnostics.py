"""Supernet diagnostics: known effects recovered, no signal found in noise, path losses exact."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hwnas.dnas.diagnostics import fit_additive, path_losses, random_paths, residual_scales
from hwnas.dnas.supernet import SuperNet
from hwnas.errors import HwnasError

from .dnas_helpers import synthetic_batches, tiny_space


def test_random_paths_keep_fixed_layers_and_cover_candidates():
    paths = random_paths(5, 4, {1: 2}, 400, np.random.default_rng(0))
    choices = np.array(paths)
    assert (choices[:, 1] == 2).all()
    assert all(set(choices[:, layer]) == {0, 1, 2, 3} for layer in (0, 2, 3, 4))


def test_additive_fit_recovers_known_effects():
    rng = np.random.default_rng(1)
    true = rng.normal(0, 0.05, size=(6, 5))
    true -= true.mean(axis=1, keepdims=True)
    paths = random_paths(6, 5, {}, 600, rng)
    losses = [1.0 + true[np.arange(6), path].sum() + rng.normal(0, 0.005) for path in paths]
    fit = fit_additive(paths, losses, 5)
    assert np.corrcoef(fit.effects.ravel(), true.ravel())[0, 1] > 0.99
    assert fit.cross_validated_r2 > 0.95
    assert fit.split_half_correlation > 0.95
    assert fit.intercept == pytest.approx(1.0, abs=0.01)


def test_additive_fit_finds_no_signal_in_noise():
    rng = np.random.default_rng(2)
    paths = random_paths(6, 5, {0: 3}, 300, rng)
    fit = fit_additive(paths, rng.normal(1.0, 0.01, size=300), 5)
    assert fit.cross_validated_r2 < 0.05
    assert abs(fit.split_half_correlation) < 0.4
    assert np.isnan(fit.effects[0]).sum() == 4 and fit.effects[0, 3] == 0.0


def test_path_losses_equal_the_extracted_child_and_restore_the_supernet():
    space = tiny_space()
    supernet = SuperNet(space).eval()
    images, labels = synthetic_batches(1, 32, seed=3)[0]
    before = {key: value.clone() for key, value in supernet.state_dict().items()}
    paths = [(0, 1, 2), (3, 3, 3)]
    measured = path_losses(supernet, images, labels, paths, batch_size=16)
    for path, loss, accuracy in zip(paths, measured.cross_entropy, measured.accuracy):
        child = supernet.extract_child(path).train()
        with torch.no_grad():
            outputs = torch.cat([child(images[:16]), child(images[16:])])
        assert loss == pytest.approx(F.cross_entropy(outputs, labels).item(), rel=1e-5)
        assert accuracy == pytest.approx((outputs.argmax(1) == labels).float().mean().item())
    assert not supernet.training
    after = supernet.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)


def test_path_of_the_wrong_length_is_refused():
    supernet = SuperNet(tiny_space())
    images, labels = synthetic_batches(1, 8)[0]
    with pytest.raises(HwnasError, match="has 2 choices"):
        path_losses(supernet, images, labels, [(0, 1)])


@pytest.mark.parametrize("weight_sharing", ["independent", "nested"])
def test_residual_scales_are_the_last_bn_scales_of_residual_candidates(weight_sharing):
    space = tiny_space()  # layer 0: 8 -> 8 and layer 2: 16 -> 16 keep their shape
    supernet = SuperNet(space, weight_sharing, residual_scale=0.5)
    scales = residual_scales(supernet)
    skip = space.candidates.index("skip")
    assert np.isnan(scales[:, skip]).all() and np.isnan(scales[1]).all()
    residual = np.delete(scales[[0, 2]], skip, axis=1)
    np.testing.assert_allclose(residual, 0.5)
