"""``mode="official"``: the official code's own OpenCV float32 blur path.

The path is checked bit for bit against the official reference case, and
against a path built here with OpenCV as the official ``GaussianBlurPath``
does (l = 9 uses OpenCV's direct filter, l = 13 and 15 its DFT branch).
LAM in official mode is checked against the official per-step loop on that
path, NaN steps included. It runs as that loop does, one path step per
forward on the whole image: a batched convolution rounds differently on
CPU, and with it which outputs tie.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import lamfast
from lamfast.lam import LAMError

from conftest import assert_close, skip_unless_reference_platform

cv2 = pytest.importorskip("cv2", reason="mode='official' needs OpenCV (opencv-python-headless)")


def opencv_path(lr: torch.Tensor, fold: int, sigma: float, l: int):
    """The official GaussianBlurPath, written out here independently of lamfast."""
    img = lr.permute(1, 2, 0).numpy().astype(np.float32)
    ax = np.arange(-l // 2 + 1.0, l // 2 + 1.0)
    xx, yy = np.meshgrid(ax, ax)
    kernels = []
    for s in np.linspace(sigma, 0, fold + 1):
        k = np.exp(-(xx**2 + yy**2) / (2.0 * (s + 1e-5) ** 2))
        kernels.append(k / np.sum(k))
    path = np.zeros((fold, *img.shape))
    deriv = np.zeros((fold, *img.shape))
    for i in range(fold):
        path[i] = cv2.filter2D(img, -1, kernels[i + 1])
        deriv[i] = cv2.filter2D(img, -1, (kernels[i + 1] - kernels[i]) * fold)
    to = lambda a: torch.from_numpy(np.float32(a)).permute(0, 3, 1, 2)  # noqa: E731
    return to(path), to(deriv)


def official_loop(model, path, deriv, h, w, d):
    """The official Path_gradient + saliency_map_PG: per step, NaN -> 0, times deriv, mean."""
    grads, nan_steps = [], 0
    for j in range(path.shape[0]):
        x = path[j][None].clone().requires_grad_(True)
        y = model(x)
        hg = (y[:, :, :-1, :] - y[:, :, 1:, :]) ** 2
        wg = (y[:, :, :, :-1] - y[:, :, :, 1:]) ** 2
        g = (hg[:, :, :, :-1] + wg[:, :, :-1, :]).sqrt()
        (grad,) = torch.autograd.grad(g[:, :, h:h + d, w:w + d].sum(), x)
        nan_steps += int(torch.isnan(grad).any())
        grads.append(torch.nan_to_num(grad[0], nan=0.0) * deriv[j])
    return torch.stack(grads).mean(0), nan_steps


class FlatRegionSR(torch.nn.Module):
    """x2 SR (conv, bilinear). On a flat patch of the image its outputs tie
    exactly wherever the blurred patch is still exactly flat, which depends
    on each step's kernel and on the path's rounding: some steps have the
    official NaN, others do not, and OpenCV's float32 path and lamfast's
    float64-rounded one disagree on how many."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return torch.nn.functional.interpolate(self.conv(x), scale_factor=2, mode="bilinear", align_corners=False)


def _flat_patch_image():
    lr = torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(1))
    lr[:, 14:22, 14:22] = 0.5
    return lr


def test_path_equals_the_official_reference_bit_for_bit(reference):
    from lamfast.lam.official_path import official_blur_path

    lr = torch.from_numpy(reference["lr"])
    path, deriv = official_blur_path(lr, int(reference["fold"]), float(reference["sigma"]), int(reference["l"]))
    steps = torch.from_numpy(reference["path_steps"])
    assert torch.equal(path[steps], torch.from_numpy(reference["path"]))
    assert torch.equal(deriv[steps], torch.from_numpy(reference["deriv"]))
    # lamfast's own float64-rounded path is close but not equal: that is why the mode exists
    ours, _ = lamfast.blur_path(lr, int(reference["fold"]), float(reference["sigma"]), int(reference["l"]))
    assert not torch.equal(ours, path)
    assert_close(ours, path, "official")


@pytest.mark.parametrize("l", [9, 13, 15])
def test_path_equals_an_opencv_built_path(l):
    from lamfast.lam.official_path import official_blur_path

    lr = torch.rand(3, 37, 29, generator=torch.Generator().manual_seed(l))
    want_p, want_d = opencv_path(lr, 12, 1.7, l)
    got_p, got_d = official_blur_path(lr, 12, 1.7, l)
    assert torch.equal(got_p, want_p) and torch.equal(got_d, want_d)


@pytest.mark.parametrize("l", [9, 13])
@pytest.mark.parametrize("crop", ["off", "auto"])
def test_lam_official_mode_equals_the_official_loop(l, crop):
    model = FlatRegionSR().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    lr = _flat_patch_image()
    h, w, d, fold = 30, 34, 12, 20
    path, deriv = opencv_path(lr, fold, 1.2, l)
    want, want_nan = official_loop(model, path, deriv, h, w, d)
    res = lamfast.lam(model, lr, h, w, d, fold=fold, l=l, mode="official", crop=crop)
    assert 0 < want_nan < fold, "the case must have some NaN steps and some clean ones"
    assert res.nan_steps == want_nan
    assert_close(res.attribution, want, "official_loop")
    assert res.crop.box is None and "official" in res.crop.reason and res.batch_size == 1
    # Why compat cannot promise this: its own float64-rounded path is not OpenCV's, so which outputs tie
    # exactly (the NaN steps) is up to rounding. (How many steps then differ depends on the thread count:
    # with 2 threads here compat lost another number of steps, with 1 the same number.)
    ours, _ = lamfast.blur_path(lr, fold, 1.2, l)
    assert not torch.equal(ours, path)


def test_official_mode_is_compat_on_a_model_without_ties():
    from lamfast.models import bundled_model

    model = bundled_model().model
    lr = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(2))
    off = lamfast.lam(model, lr, 40, 40, 16, fold=10, mode="official")
    com = lamfast.lam(model, lr, 40, 40, 16, fold=10, mode="compat")
    assert off.params.mode == "official" and off.nan_steps == com.nan_steps == 0
    assert_close(off.attribution, com.attribution, "official_vs_compat")
    assert_close(off.di, com.di, "official_vs_compat_di", dtype=torch.float32)


def test_without_opencv_the_error_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with pytest.raises(LAMError, match="opencv-python-headless") as info:
        lamfast.lam(torch.nn.Upsample(scale_factor=2), torch.rand(3, 16, 16), 4, 4, 8, fold=3, mode="official")
    assert "\n" not in str(info.value)


def test_official_mode_reproduces_the_reference_attribution_bit_for_bit(reference):
    """The official case: attribution and saliency equal to the official code's
    float32 numbers exactly. DI keeps the ~3e-6 of the official float32 Gini."""
    from lamfast.models import TinySR

    sd = {k: torch.from_numpy(v) for k, v in reference.items() if "." in k}
    model = TinySR.from_state_dict(sd)
    model.load_state_dict(sd)
    res = lamfast.lam(model.eval(), torch.from_numpy(reference["lr"]), int(reference["h"]), int(reference["w"]),
                      int(reference["window_size"]), fold=int(reference["fold"]), sigma=float(reference["sigma"]),
                      l=int(reference["l"]), mode="official")
    assert_close(res.di, float(reference["di"]), "official_di", dtype=torch.float32)
    assert_close(res.attribution, reference["attribution"], "official")
    assert_close(res.saliency, reference["saliency"], "official")
    skip_unless_reference_platform(reference)
    assert torch.equal(res.attribution, torch.from_numpy(reference["attribution"]))
    assert torch.equal(res.saliency, torch.from_numpy(reference["saliency"]))


def test_cli_mode_official(tmp_path, capsys, monkeypatch):
    import json

    from lamfast.cli import main

    out = tmp_path / "o"
    assert main(["lam", "--mode", "official", "--fold", "5", "--window_size", "8", "--no-progress",
                 "--output_dir", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["mode"] == "official" and result["batch_size"] == 1
    assert "official" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "cv2", None)
    assert main(["lam", "--mode", "official", "--fold", "5", "--no-progress", "--output_dir", str(tmp_path / "p")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "opencv-python-headless" in err[0] and not (tmp_path / "p").exists()
