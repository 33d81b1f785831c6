"""LAM_Demo's other paths and objectives (P13, part 3), each against its official definition.

The official ``SaliencyModel`` (BackProp.py and utils.py) defines, besides the blur path:
``LinearPath(fold)`` (zero baseline), ``GaussianLinearPath(sigma, fold, l)`` (a straight line from the
image filtered once with the l x l kernel), IG (``saliency_map_I_gradient``: the straight line from
an ``IG_baseline`` of ``gaus``/``bif``/``mean``, ``mean(grad) * (x - b)``), the objectives
``attr_grad`` and ``attr_id`` and their ``reduce`` of ``sum``/``mean``. Every reference here is written
out from those definitions (numpy ``interpolation``, scipy for the float64 filter, OpenCV where the
official code calls it) and run as the official loop does: one path point per forward, batch 1.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lamfast
from lamfast.lam import LAMError, LAMParams

from conftest import assert_close, attr_grad, attr_id, lam_loop

cv2 = pytest.importorskip("cv2", reason="the official IG baselines and mode='official' use OpenCV")
ndimage = pytest.importorskip("scipy.ndimage")

FOLD = 7
SIGMA, L = 1.2, 9


class LocalSR(nn.Module):
    """x2, two 3x3 convs: local in space, so crops run."""

    def __init__(self, channels: int = 3):
        super().__init__()
        torch.manual_seed(3)
        self.a = nn.Conv2d(channels, 8, 3, padding=1)
        self.b = nn.Conv2d(8, channels * 4, 3, padding=1)

    def forward(self, x):
        return F.pixel_shuffle(self.b(torch.tanh(self.a(x))), 2)


def official_kernel(l, sigma):
    ax = np.arange(-l // 2 + 1.0, l // 2 + 1.0)
    xx, yy = np.meshgrid(ax, ax)
    k = np.exp(-(xx**2 + yy**2) / (2.0 * (sigma + 1e-5) ** 2))
    return k / np.sum(k)


def interpolation(x, x_prime, fold):
    """The official utils.interpolation: ``linspace(0, 1, fold) * (x - x') + x'``."""
    diff = x - x_prime
    return np.linspace(0, 1, fold).reshape((fold, 1, 1, 1)) * diff + x_prime


def official_baseline(image: np.ndarray, path: str, baseline: str) -> np.ndarray:
    """[C,H,W] baseline as the official code builds it (float64 filter by scipy in place of OpenCV's float32)."""
    if path == "gaussian_linear":
        k = official_kernel(L, SIGMA)
        return np.stack([ndimage.correlate(plane, k, mode="mirror") for plane in image])  # mirror = REFLECT_101
    if baseline == "zero":
        return np.zeros_like(image)
    hwc = np.moveaxis(image, 0, 2).astype(np.float32) * 255.0
    ablated = {"gaus": lambda a: cv2.GaussianBlur(a, (7, 7), 0),
               "bif": lambda a: cv2.bilateralFilter(a, 15, 90, 90),
               "mean": lambda a: cv2.medianBlur(a, 5)}[baseline](hwc)
    return np.moveaxis(ablated / 255.0, 2, 0).astype(image.dtype)


def official_line(image: torch.Tensor, path: str, baseline: str, fold: int):
    x = image.numpy()
    b = official_baseline(x, path, baseline)
    points = interpolation(x, b, fold)
    deriv = np.repeat((x - b)[None], fold, axis=0)
    return torch.from_numpy(points).to(image.dtype), torch.from_numpy(deriv).to(image.dtype)


def _image(C=3, H=16, W=18, dtype=torch.float64, seed=0):
    return torch.rand(C, H, W, generator=torch.Generator().manual_seed(seed), dtype=dtype)


LINES = [("linear", "zero"), ("gaussian_linear", "zero"), ("linear", "gaus"), ("linear", "bif"), ("linear", "mean")]
OBJECTIVES = [("grad", "sum"), ("grad", "mean"), ("id", "sum"), ("id", "mean")]
REFERENCE = {"grad": attr_grad, "id": attr_id}


@pytest.mark.parametrize("objective,reduce", OBJECTIVES)
@pytest.mark.parametrize("path,baseline", LINES)
def test_straight_line_paths_equal_the_official_loop(path, baseline, objective, reduce):
    model = LocalSR().double().eval()
    image = _image()
    points, deriv = official_line(image, path, baseline, FOLD)
    want = lam_loop(model, points, deriv, (6, 8, 10), objective=REFERENCE[objective], reduce=reduce)
    for crop in ("auto", "off"):
        got = lamfast.lam(model, image, 6, 8, 10, fold=FOLD, sigma=SIGMA, l=L, path=path, baseline=baseline,
                          objective=objective, reduce=reduce, crop=crop)
        assert (got.crop.box is not None) == (crop == "auto"), got.crop.reason
        assert_close(got.attribution, want, "lam_attribution")


@pytest.mark.parametrize("objective,reduce", OBJECTIVES)
def test_blur_path_with_each_objective_equals_the_official_loop(objective, reduce):
    model = LocalSR().double().eval()
    image = _image(seed=1)
    path, deriv = lamfast.ops.blur_path_torch(image, FOLD, SIGMA, L)
    want = lam_loop(model, path, deriv, (4, 10, 12), objective=REFERENCE[objective], reduce=reduce)
    got = lamfast.lam(model, image, 4, 10, 12, fold=FOLD, objective=objective, reduce=reduce)
    assert got.crop.box is not None
    assert_close(got.attribution, want, "lam_attribution")


def test_a_window_on_the_last_row_averages_over_the_clipped_crop():
    # G stops one short of the output: the official crop there has size - 1 rows, and mean divides by that.
    model = LocalSR().double().eval()
    image = _image(seed=2)
    sH = image.shape[1] * 2
    path, deriv = lamfast.ops.blur_path_torch(image, FOLD, SIGMA, L)
    want = lam_loop(model, path, deriv, (sH - 8, 0, 8), objective=attr_grad, reduce="mean")
    got = lamfast.lam(model, image, sH - 8, 0, 8, fold=FOLD, reduce="mean")
    assert_close(got.attribution, want, "lam_attribution")


def test_the_ig_baseline_path_is_the_official_ig():
    # saliency_map_I_gradient: mean over steps of the gradient, times (x - b) once at the end.
    model = LocalSR().double().eval()
    image = _image(seed=3)
    points, _ = official_line(image, "linear", "gaus", 10)
    grads = []
    for j in range(10):
        x = points[j][None].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(attr_grad(model(x), 6, 6, 8), x)
        grads.append(g[0])
    b = torch.from_numpy(official_baseline(image.numpy(), "linear", "gaus"))
    want = torch.stack(grads).mean(0) * (image - b)
    got = lamfast.lam(model, image, 6, 6, 8, fold=10, path="linear", baseline="gaus")
    assert_close(got.attribution, want, "lam_attribution")


def test_a_function_objective_sees_the_output_window():
    model = LocalSR().double().eval()
    image = _image(seed=4)

    def energy(window):  # [N,C,d,d] -> [N]
        return window.pow(2).sum(dim=(1, 2, 3))

    path, deriv = lamfast.ops.blur_path_torch(image, FOLD, SIGMA, L)
    want = lam_loop(model, path, deriv, (2, 2, 10), objective=lambda y, h, w, d, r: energy(y[:, :, h:h + d, w:w + d]).sum())
    got = lamfast.lam(model, image, 2, 2, 10, fold=FOLD, objective=energy)
    assert_close(got.attribution, want, "lam_attribution")
    assert got.params.defining()["objective"].endswith("energy")
    with pytest.raises(LAMError, match=r"one value per path point") as err:
        lamfast.lam(model, image, 2, 2, 10, fold=FOLD, objective=lambda win: win.sum())
    assert err.value.param == "objective" and "\n" not in str(err.value)


@pytest.mark.parametrize("path,baseline,objective,reduce", [("gaussian_linear", "zero", "grad", "sum"),
                                                            ("linear", "zero", "id", "mean"),
                                                            ("blur", "zero", "grad", "mean")])
def test_official_mode_equals_the_official_float32_loop(path, baseline, objective, reduce):
    """The official arrays: float32 image, OpenCV's float32 filter, float64 interpolation cast to float32."""
    model = LocalSR().eval()
    image = _image(dtype=torch.float32, seed=5)
    x = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
    if path == "blur":
        kernels = [official_kernel(L, s) for s in np.linspace(SIGMA, 0, FOLD + 1)]
        points = np.stack([cv2.filter2D(x, -1, kernels[j + 1]) for j in range(FOLD)]).astype(np.float32)
        deriv = np.stack([cv2.filter2D(x, -1, (kernels[j + 1] - kernels[j]) * FOLD) for j in range(FOLD)])
    else:
        b = cv2.filter2D(x, -1, official_kernel(L, SIGMA)) if path == "gaussian_linear" else np.zeros_like(x)
        points = interpolation(x, b, FOLD).astype(np.float32)
        deriv = np.repeat(np.expand_dims(x - b, axis=0), FOLD, axis=0)
    to = lambda a: torch.from_numpy(np.float32(a)).permute(0, 3, 1, 2)  # noqa: E731
    want = lam_loop(model, to(points), to(deriv), (4, 4, 12), objective=REFERENCE[objective], reduce=reduce)
    got = lamfast.lam(model, image, 4, 4, 12, fold=FOLD, path=path, baseline=baseline, objective=objective,
                      reduce=reduce, mode="official")
    assert got.crop.box is None
    assert_close(got.attribution, want, "official")


class NearestSR(nn.Module):
    """x2 nearest-neighbour upsampling after a conv: neighbouring outputs tie exactly (the NaN steps of attr_grad)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return F.interpolate(self.conv(x), scale_factor=2, mode="nearest")


def test_attr_id_has_no_nan_steps_and_crops_where_ties_stop_attr_grad():
    model = NearestSR().double().eval()
    image = _image(seed=6)
    with pytest.raises(LAMError, match=f"all {FOLD} path steps had NaN gradients"):
        lamfast.lam(model, image, 4, 4, 8, fold=FOLD)
    robust = lamfast.lam(model, image, 4, 4, 8, fold=FOLD, crop="auto", mode="robust")
    assert robust.crop.box is not None  # only compat's ties keep attr_grad on the whole image
    path, deriv = lamfast.ops.blur_path_torch(image, FOLD, SIGMA, L)
    got = lamfast.lam(model, image, 4, 4, 8, fold=FOLD, objective="id")
    assert got.nan_steps == 0 and got.crop.box is not None
    assert_close(got.attribution, lam_loop(model, path, deriv, (4, 4, 8), objective=attr_id), "lam_attribution")


def test_video_clips_take_every_path_and_objective():
    from toy_models import SlidingVSR

    model = SlidingVSR().double().eval()
    clip = torch.rand(3, 3, 12, 14, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    T, C, H, W = clip.shape
    flat = clip.reshape(T * C, H, W)
    points, deriv = official_line(flat, "gaussian_linear", "zero", FOLD)

    def forward(x):
        return model(x.reshape(1, T, C, H, W))[:, 1]

    want = lam_loop(forward, points, deriv, (4, 6, 8), objective=attr_id, reduce="mean")
    got = lamfast.lam(model, clip, 4, 6, 8, fold=FOLD, path="gaussian_linear", objective="id", reduce="mean")
    assert got.frame == 1
    assert_close(got.attribution, want.reshape(T, C, H, W), "lam_attribution")


@pytest.mark.parametrize("kwargs,param", [
    (dict(path="spiral"), "path"),
    (dict(objective="energy"), "objective"),
    (dict(reduce="max"), "reduce"),
    (dict(baseline="gaus"), "baseline"),  # a baseline is the start of the straight line only
    (dict(objective=lambda win: win.sum((1, 2, 3)), reduce="mean"), "reduce"),
])
def test_bad_path_and_objective_choices_fail_in_one_line(kwargs, param):
    with pytest.raises(LAMError) as err:
        lamfast.lam(LocalSR(), _image(dtype=torch.float32), 0, 0, 8, **kwargs)
    assert err.value.param == param and "\n" not in str(err.value)


def test_defaults_keep_the_parameters_that_define_a_result_and_its_store_key():
    assert LAMParams().defining() == {"fold": 50, "sigma": 1.2, "l": 9, "mode": "compat"}
    assert LAMParams(path="linear", baseline="bif", objective="id", reduce="mean").defining() == {
        "fold": 50, "sigma": 1.2, "l": 9, "mode": "compat", "path": "linear", "baseline": "bif", "objective": "id",
        "reduce": "mean"}


def test_cli_takes_the_path_and_objective_flags(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lamfast", "lam", "--fold", "4", "--path", "linear", "--baseline", "gaus",
           "--objective", "id", "--reduce", "mean", "--no-progress", "--output-dir", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "result.json").read_text())
    assert (summary["path"], summary["baseline"], summary["objective"], summary["reduce"]) == ("linear", "gaus", "id", "mean")
    bad = subprocess.run([*cmd[:6], "--baseline", "gaus", "--output-dir", str(tmp_path / "bad")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "--baseline" in bad.stderr, bad.stderr
