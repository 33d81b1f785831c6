"""How converged a LAM is: ``LAMResult.di_fold_half`` against ``lam(fold=fold/2).di`` (the sub-sum over every
second path point must be that LAM), and ``LAMResult.completeness`` against the ratio computed here from the
model, the official objective and the path's own start."""
from __future__ import annotations

import pytest
import torch

import lamfast
from lamfast.ops import blur_path_torch

from conftest import assert_close, attr_grad, optional_module
from toy_models import SlidingVSR

WINDOWS = [(150, 110, 16), (100, 60, 16), (40, 200, 8), (0, 0, 16), (240, 240, 16)]


@pytest.fixture(scope="module")
def astronaut():
    from lamfast.request import prepare_input

    return prepare_input(None, "bundled", scale=4).tensor()  # [3,64,64]


class TestFoldHalf:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
    @pytest.mark.parametrize("crop", ["auto", "off"])
    @pytest.mark.parametrize("fold", [50, 8, 2])
    def test_di_fold_half_is_the_fold_half_lam(self, tinysr, astronaut, dtype, crop, fold):
        model = tinysr.to(dtype)
        try:
            full = lamfast.lam_windows(model, astronaut, WINDOWS, fold=fold, crop=crop)
            half = lamfast.lam_windows(model, astronaut, WINDOWS, fold=fold // 2, crop=crop)
        finally:
            tinysr.float()
        for r, h in zip(full, half):
            assert r.di_fold_half is not None
            assert_close(r.di_fold_half, h.di, "lam_di", dtype=dtype)
            assert r.di != h.di  # the sub-sum is another LAM, not this one

    @pytest.mark.parametrize("mode", ["robust", "compat"])
    def test_modes_and_objectives(self, tinysr, lr32, mode):
        for objective, reduce in (("grad", "sum"), ("id", "mean")):
            r = lamfast.lam(tinysr, lr32, 40, 60, 16, fold=12, mode=mode, objective=objective, reduce=reduce)
            h = lamfast.lam(tinysr, lr32, 40, 60, 16, fold=6, mode=mode, objective=objective, reduce=reduce)
            assert_close(r.di_fold_half, h.di, "lam_di", dtype=torch.float32)

    def test_official_mode(self, tinysr, lr32):
        optional_module("cv2")
        r = lamfast.lam(tinysr, lr32, 40, 60, 16, fold=10, mode="official")
        h = lamfast.lam(tinysr, lr32, 40, 60, 16, fold=5, mode="official")
        # OpenCV's float32 derivative at fold/2 and the sum of two at fold round differently
        assert abs(r.di_fold_half - h.di) < 1e-4

    @pytest.mark.parametrize("frame", [None, 2])
    def test_a_clip(self, frame):
        model = SlidingVSR().double().eval()
        clip = torch.rand(5, 3, 12, 14, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        r = lamfast.lam(model, clip, 8, 10, 8, frame=frame, fold=10)
        h = lamfast.lam(model, clip, 8, 10, 8, frame=frame, fold=5)
        assert_close(r.di_fold_half, h.di, "lam_di", dtype=torch.float64)

    @pytest.mark.parametrize("kwargs", [dict(fold=9), dict(fold=10, path="linear"),
                                        dict(fold=10, path="gaussian_linear")])
    def test_none_where_the_half_points_are_not_on_the_path(self, tinysr, lr32, kwargs):
        r = lamfast.lam(tinysr, lr32, 40, 60, 16, **kwargs)
        assert r.di_fold_half is None and r.summary()["di_fold_half"] is None


def _start_of_blur_path(x, sigma, l):
    """γ_0 from the path itself: γ'_1 = fold·(γ_1 − γ_0), so γ_0 = γ_1 − γ'_1 / fold."""
    path, deriv = blur_path_torch(x, 4, sigma, l)
    return path[0] - deriv[0] / 4


class TestCompleteness:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
    @pytest.mark.parametrize("crop", ["auto", "off"])
    def test_completeness_is_the_ratio_to_the_objectives_change(self, tinysr, astronaut, dtype, crop):
        model = tinysr.to(dtype)
        x = astronaut.to(dtype)
        try:
            results = lamfast.lam_windows(model, x, WINDOWS, fold=20, crop=crop)
            with torch.no_grad():
                y, y0 = model(x[None]), model(_start_of_blur_path(x, 1.2, 9)[None])
        finally:
            tinysr.float()
        for r in results:
            h, w, s = r.window
            expected = float(r.attribution.double().sum()) / float(attr_grad(y, h, w, s) - attr_grad(y0, h, w, s))
            assert_close(r.completeness, expected, "completeness_ratio", dtype=dtype)

    def test_the_official_figure_on_the_demo_window(self, tinysr, astronaut):
        # the paper's demo window: 36.57 / 36.03 at fold 50, about 1.5 % above what completeness requires
        r = lamfast.lam(tinysr, astronaut.double(), 150, 110, fold=50)
        assert 1.01 < r.completeness < 1.02

    def test_a_straight_line_starts_at_its_baseline(self, tinysr, lr32):
        r = lamfast.lam(tinysr, lr32, 40, 60, 16, fold=64, path="linear", objective="id")
        with torch.no_grad():
            change = float(tinysr(lr32[None])[:, :, 40:56, 60:76].sum() - tinysr(torch.zeros_like(lr32)[None])[:, :, 40:56, 60:76].sum())
        assert_close(r.completeness, float(r.attribution.double().sum()) / change, "completeness_ratio",
                     dtype=torch.float32)
        assert abs(r.completeness - 1) < 0.05  # a 64-step sum of a smooth line integral

    def test_it_approaches_one_as_fold_grows(self, tinysr, astronaut):
        # first order in the step: measured 1.086 (10), 1.008 (100), 1.0019 (400) in float64
        ratios = [lamfast.lam(tinysr, astronaut, 150, 110, fold=f).completeness for f in (10, 100, 400)]
        assert ratios[0] - 1 > ratios[1] - 1 > ratios[2] - 1 > 0

    def test_stored_in_the_summary(self, tinysr, lr32):
        r = lamfast.lam(tinysr, lr32, 40, 60, 16, fold=4)
        s = r.summary()
        assert s["completeness"] == r.completeness and s["di_fold_half"] == r.di_fold_half
