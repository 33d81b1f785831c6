"""lamfast.di_map: every window equals lamfast.lam, the grid, failures kept per window, one NaN warning;
the map comes from one forward of the image."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lamfast
from lamfast.errors import LamfastError


class HalfBlind(nn.Module):
    """x2 bicubic of the right half only: windows of the left quarter have an all-zero attribution (the
    bicubic taps of the second quarter reach the right half)."""

    def forward(self, x):
        mask = torch.zeros_like(x)
        mask[..., x.shape[-1] // 2:] = 1
        return F.interpolate(x * mask, scale_factor=2, mode="bicubic", align_corners=False)


class Counted(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.batches = model, []

    def forward(self, x):
        self.batches.append(tuple(x.shape))
        return self.model(x)


class TestDIMap:
    """lamfast.di_map."""

    @pytest.mark.parametrize("crop", ["auto", "off"])
    @pytest.mark.parametrize("which", ["tinysr", "edsr"])
    def test_every_sampled_window_equals_lam(self, which, crop, request, lr32):
        model = request.getfixturevalue(which)
        dimap = lamfast.di_map(model, lr32, 16, fold=6, crop=crop)
        assert dimap.shape == (8, 8) and dimap.scale == 4 and not dimap.failures
        assert all((c.box is not None) == (crop == "auto") for c in dimap.crops)
        for i, j in [(0, 0), (7, 7), (3, 5), (6, 1)]:
            r = lamfast.lam(model, lr32, dimap.rows[i], dimap.cols[j], 16, fold=6, crop=crop)
            assert abs(r.di - float(dimap.di[i, j])) <= 1e-6 * max(1.0, abs(r.di))  # relative, DI can exceed 1
            assert int(dimap.nan_steps[i, j]) == r.nan_steps
            assert (dimap.saliency_map(i, j) - r.saliency).abs().max() <= 0.5 / 255 + 1e-6  # uint8 rounding

    def test_the_whole_image_runs_once(self, tinysr, lr32):
        """One forward of the whole image (batch 1, the full LR size) for the SR output, the scale and the
        windows; the path's forwards run on crops or chunks of points, never the image alone again."""
        model = Counted(tinysr)
        lamfast.di_map(model, lr32, 32, fold=2)
        assert model.batches.count((1, 3, 32, 32)) == 1

    @pytest.mark.parametrize("size,stride,shape", [(8, None, (16, 16)), (16, 8, (15, 15)), (32, 48, (3, 3)),
                                                   (24, None, (6, 6))])
    def test_window_sizes_and_strides_make_the_grid(self, tinysr, lr32, size, stride, shape):
        dimap = lamfast.di_map(tinysr, lr32, size, stride, fold=2, keep_maps=False)
        assert dimap.shape == shape and dimap.saliency is None and dimap.window_size == size
        assert dimap.rows[-1] + size == 128 and dimap.cols[-1] + size == 128
        assert dimap.boxes[1] == (dimap.rows[0], dimap.cols[1], size)
        assert (dimap.rows, dimap.cols) == lamfast.lam.windows.Grid(size, stride).positions((128, 128))
        with pytest.raises(LamfastError, match="maps were not kept"):
            dimap.saliency_map(0, 0)

    def test_failed_windows_are_recorded_and_the_others_kept(self, lr32):
        with pytest.warns(lamfast.LAMNaNWarning, match="12 of 16 windows had path steps with") as caught:
            dimap = lamfast.di_map(HalfBlind(), lr32, 16, fold=3)
        assert len(caught) == 1 and caught[0].filename == __file__  # one warning, at the caller
        assert dimap.shape == (4, 4)
        assert set(dimap.failures) == {(i, 0) for i in range(4)}
        assert all("all zero" in why for why in dimap.failures.values())
        assert dimap.di[:, 0].isnan().all() and not dimap.di[:, 1:].isnan().any()
        assert (dimap.nan_steps[:, 0] == -1).all() and (dimap.nan_steps[:, 1:] >= 0).all()
        assert torch.allclose(dimap.gini, 1 - dimap.di / 100, equal_nan=True)

    def test_a_clip_gets_a_map_per_frame(self):
        from lamfast.models import bundled_video_model
        from lamfast.request import prepare_clip

        video = bundled_video_model()
        clip = prepare_clip(video, "bundled").tensor()[:, :, :16, :16]
        dimap = lamfast.di_map(video, clip, 16, fold=2)
        assert dimap.shape == (2, 2) and dimap.saliency.shape == (2, 2, 5, 16, 16)
        r = lamfast.lam(video, clip, dimap.rows[1], dimap.cols[0], 16, fold=2)
        assert abs(r.di - float(dimap.di[1, 0])) <= 1e-6 * max(1.0, r.di)

    @pytest.mark.parametrize("kwargs,param", [(dict(window_size=200), "window_size"), (dict(stride=0), "stride"),
                                              (dict(window_size=1), "window_size")])
    def test_bad_grids_are_one_line_errors(self, tinysr, lr32, kwargs, param):
        with pytest.raises(LamfastError) as info:
            lamfast.di_map(tinysr, lr32, **{"window_size": 16, **kwargs}, fold=2)
        assert info.value.param == param and "\n" not in str(info.value)
