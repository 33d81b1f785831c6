"""Figures: colour map parity with matplotlib and the official panel recipe."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lamfast import viz


def test_seismic_matches_matplotlib():
    plt = pytest.importorskip("matplotlib.pyplot", reason="matplotlib (test extra) checks the colour map")
    v = torch.rand(400, 400, generator=torch.Generator().manual_seed(0))
    v[0, :4] = torch.tensor([0.0, 1.0, 0.5, 0.25])
    expected = (255 * plt.get_cmap("seismic")(v.numpy())).astype(np.uint8)[..., :3]
    assert np.array_equal(viz.seismic(v), expected)


def test_saliency_panel_is_nearest_zoom_of_colour_map():
    m = torch.rand(6, 5, generator=torch.Generator().manual_seed(1))
    img = viz.saliency_image(m, 3)
    assert img.size == (15, 18)
    arr = np.asarray(img)
    assert np.array_equal(arr[::3, ::3], viz.seismic(m * 0.5 + 0.5))
    assert np.array_equal(arr[1::3, 2::3], arr[::3, ::3])


def test_zero_saliency_is_white_and_one_is_dark_red():
    white, red = viz.seismic(torch.tensor([[0.5, 1.0]]))[0]
    assert white[0] == 255 and min(white) >= 250  # M = 0 sits at the white centre of seismic
    assert red[0] > 100 and red[1] == 0 and red[2] == 0


def test_blend_truncates_like_official():
    a = Image.fromarray(np.full((8, 8, 3), 201, np.uint8))
    lr = Image.fromarray(np.full((2, 2, 3), 100, np.uint8))
    out = np.asarray(viz.blend(a, lr, 0.5))
    assert (out == 150).all()  # (201 + 100) / 2 = 150.5 -> 150


def test_grid_and_window_box():
    hr = Image.fromarray(np.zeros((32, 32, 3), np.uint8))
    boxed = np.asarray(viz.window_image(hr, 4, 6, 10))
    assert tuple(boxed[4, 10]) == (255, 0, 0) and tuple(boxed[10, 10]) == (0, 0, 0)
    g = viz.grid([hr, hr, hr])
    assert g.size == (96, 32)
    with pytest.raises(ValueError, match="one size"):
        viz.grid([hr, hr.resize((16, 16))])
