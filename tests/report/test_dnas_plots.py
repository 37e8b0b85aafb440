import numpy as np
import pytest
from PIL import Image

from hwnas.errors import HwnasError
from hwnas.report.dnas_plots import save_probability_evolution, save_theta_heatmap

CANDIDATES = ("k3_e1", "k3_e3", "k5_e6", "skip")


def test_heatmap_is_a_png_that_grows_with_the_layers(tmp_path):
    rng = np.random.default_rng(0)
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    save_theta_heatmap(rng.dirichlet(np.ones(4), 3), CANDIDATES, small)
    save_theta_heatmap(rng.dirichlet(np.ones(4), 22), CANDIDATES, large, title="22 layers")
    with Image.open(small) as first, Image.open(large) as second:
        assert first.format == second.format == "PNG"
        assert second.size[1] > first.size[1]
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_evolution_plot(tmp_path):
    history = np.random.default_rng(1).dirichlet(np.ones(4), (6, 5))
    save_probability_evolution(history, CANDIDATES, tmp_path / "evolution.png")
    with Image.open(tmp_path / "evolution.png") as image:
        assert image.format == "PNG" and image.size[0] > 100


def test_shape_mismatches_raise(tmp_path):
    with pytest.raises(HwnasError, match="candidates"):
        save_theta_heatmap(np.ones((3, 5)) / 5, CANDIDATES, tmp_path / "a.png")
    with pytest.raises(HwnasError, match="epochs"):
        save_probability_evolution(np.ones((3, 4)) / 4, CANDIDATES, tmp_path / "b.png")
    with pytest.raises(HwnasError, match="epochs"):
        save_probability_evolution(np.ones((0, 3, 4)), CANDIDATES, tmp_path / "c.png")
