"""LAM for any channel count: grayscale and Y-channel models (C = 1), multi-band ones (C = 4), and
outputs with another channel count than the input (P13, part 1).

Each case is held against a reference loop written here: the official
algorithm, one path step per forward, batch 1, on the twin's blur path.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lamfast
from lamfast.ops import blur_path_torch

from conftest import assert_close, lam_loop


class BandSR(nn.Module):
    """x2 SR from ``cin`` bands to ``cout``: conv, tanh, conv, pixel shuffle (local, reach 2)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        torch.manual_seed(cin * 10 + cout)
        self.a = nn.Conv2d(cin, 8, 3, padding=1)
        self.b = nn.Conv2d(8, cout * 4, 3, padding=1)

    def forward(self, x):
        return F.pixel_shuffle(self.b(torch.tanh(self.a(x))), 2)


def reference_loop(model, image, h, w, size, fold, sigma=1.2, l=9):
    """The official loop (``conftest.lam_loop``) on the twin's blur path."""
    return lam_loop(model, *blur_path_torch(image, fold, sigma, l), (h, w, size))


CASES = [(1, 1), (4, 4), (4, 1), (1, 3)]


@pytest.mark.parametrize("cin, cout", CASES, ids=[f"{a}to{b}" for a, b in CASES])
@pytest.mark.parametrize("crop", ["auto", "off"])
def test_any_channel_count_equals_the_reference_loop(cin, cout, crop):
    model = BandSR(cin, cout).double().eval()
    x = torch.rand(cin, 20, 22, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    r = lamfast.lam(model, x, 9, 11, 8, fold=6, crop=crop)
    want = reference_loop(model, x, 9, 11, 8, 6)
    assert r.attribution.shape == (cin, 20, 22) and r.sr.shape == (cout, 40, 44)
    assert_close(r.attribution, want, "same_lam")
    assert (r.crop.box is not None) == (crop == "auto")  # the crop path ran where asked, and matched


@pytest.mark.parametrize("cin", [1, 4])
def test_several_windows_and_official_mode_take_any_channel_count(cin):
    model = BandSR(cin, cin).eval()
    x = torch.rand(cin, 20, 22, generator=torch.Generator().manual_seed(4))
    many = lamfast.lam_windows(model, x, [(0, 0, 8), (20, 30, 8)], fold=5)
    one = lamfast.lam(model, x, 20, 30, 8, fold=5)
    assert_close(many[1].attribution, one.attribution, "same_lam")
    pytest.importorskip("cv2", reason="mode='official' builds its path with OpenCV")
    official = lamfast.lam(model, x, 20, 30, 8, fold=5, mode="official")
    assert official.attribution.shape == (cin, 20, 22)
    assert_close(official.di, one.di, "official_vs_compat_di", dtype=torch.float32)


def test_official_path_filters_planes_as_opencv_filters_rgb():
    pytest.importorskip("cv2", reason="the official path is OpenCV's")
    from lamfast.lam.official_path import official_blur_path

    rgb = torch.rand(3, 17, 19, generator=torch.Generator().manual_seed(5))
    whole, whole_d = official_blur_path(rgb, 8, 1.2, 13)
    planes = [official_blur_path(rgb[c:c + 1], 8, 1.2, 13) for c in range(3)]
    assert torch.equal(torch.cat([p for p, _ in planes], dim=1), whole)
    assert torch.equal(torch.cat([d for _, d in planes], dim=1), whole_d)


def test_a_channel_mismatch_says_so_in_one_line():
    model = BandSR(1, 1).eval()
    with pytest.raises(lamfast.LAMError, match=r"the input has 3 channels, the model's first convolution takes 1$") as info:
        lamfast.lam(model, torch.rand(3, 16, 16), 4, 4, 8, fold=2)
    assert info.value.param == "model" and "\n" not in str(info.value)


def test_the_scale_probe_uses_the_models_input_channels():
    from lamfast.lam import infer_scale

    assert infer_scale(BandSR(1, 1).eval()) == 2 and infer_scale(BandSR(4, 2).eval()) == 2


def test_scale_one_restoration_models_work():
    """Denoising, deraining, JPEG: a model that keeps the size is LAM's scale 1 (README)."""
    class Denoiser(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return x + 0.1 * torch.tanh(self.conv(x))

    model = Denoiser().double().eval()
    x = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    r = lamfast.lam(model, x, 6, 6, 8, fold=4, mode="robust")
    assert r.scale == 1 and r.sr.shape == (3, 24, 24)
    # robust equals the official loop where nothing ties, as here
    assert_close(r.attribution, reference_loop(model, x, 6, 6, 8, 4), "same_lam")
