"""lamfast.kde_map: scipy.stats.gaussian_kde as oracle, compiled kernel vs twin over devices and dtypes, edge cases, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import lamfast
from lamfast.ops import kde_map_torch

from conftest import assert_close, compiled


def scipy_kde(saliency: np.ndarray) -> np.ndarray:
    """What the official vis_saliency_kde computes, before its colour map."""
    H, W = saliency.shape
    ys, xs = np.mgrid[0:H:1, 0:W:1]
    points = np.vstack([xs.ravel(), ys.ravel()])
    kernel = stats.gaussian_kde(points, weights=saliency.astype(np.float64).ravel())
    z = kernel(points).reshape(H, W)
    return z / z.max()


def _maps() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    H, W = 40, 40
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    u, v = (xx - 25) * math.cos(0.6) + (yy - 12) * math.sin(0.6), -(xx - 25) * math.sin(0.6) + (yy - 12) * math.cos(0.6)
    sparse = np.zeros((33, 27))
    sparse[rng.integers(0, 33, 12), rng.integers(0, 27, 12)] = rng.random(12)
    return {
        "dense_random": rng.random((32, 32)),
        "peaked_random": rng.random((48, 48)) ** 12,
        "rotated_blob": np.exp(-(u / 6) ** 2 - (v / 1.5) ** 2),
        "sparse_odd": sparse,
        "two_blobs_rect": np.exp(-((xx[:17, :29 - 0] - 3) ** 2 + (yy[:17, :29] - 4) ** 2) / 3)
        + 0.5 * np.exp(-((xx[:17, :29] - 25) ** 2 + (yy[:17, :29] - 12) ** 2) / 5),
    }


def _direct_degenerate_kde(m: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """O(N²) rank-1 KDE: Gaussian along ``direction``, zero width across it."""
    H, W = m.shape
    w = m.ravel() / m.sum()
    ys, xs = np.mgrid[0:H, 0:W]
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    mean = (w[:, None] * pts).sum(0)
    along_pts = (pts - mean) @ direction
    var = (w * along_pts**2).sum() / (1 - (w**2).sum()) * (1 / (w**2).sum()) ** (-1 / 3)
    d = pts[:, None, :] - pts[None, :, :]
    along = d @ direction
    across = d @ np.array([-direction[1], direction[0]])
    k = np.where(np.abs(across) < 1e-6, np.exp(-0.5 * along**2 / var), 0.0)
    z = (k * w[None, :]).sum(1).reshape(H, W)
    return z / z.max()


class TestKDEMap:
    """lamfast.kde_map and its twin."""

    @pytest.mark.parametrize("name", list(_maps()))
    def test_matches_scipy(self, device, name):
        m = _maps()[name].astype(np.float32)
        expected = scipy_kde(m)
        out = lamfast.kde_map(torch.from_numpy(m).to(device))
        assert out.shape == m.shape and out.dtype == torch.float32
        assert_close(out, expected, "official_path")
        twin = kde_map_torch(torch.from_numpy(m).to(device))
        assert_close(twin, expected, "official_path")

    def test_matches_official_reference(self, reference):
        out = lamfast.kde_map(torch.from_numpy(reference["saliency"]))
        assert_close(out, reference["kde"], "official_path")
        assert_close(kde_map_torch(torch.from_numpy(reference["saliency"])), reference["kde"], "official_path")

    def test_float64_is_tight(self, device):
        m = _maps()["rotated_blob"]
        out = lamfast.kde_map(torch.from_numpy(m).to(device))
        assert out.dtype == torch.float64
        assert_close(out, scipy_kde(m), "scipy")

    def test_batch_equals_per_map(self, device):
        gen = torch.Generator().manual_seed(3)
        maps = (torch.rand(4, 21, 19, generator=gen) ** 6).to(device)
        maps[2] = 0  # a map without mass stays all zeros inside a batch
        batch = lamfast.kde_map(maps)
        assert batch.shape == maps.shape
        for b in range(4):
            assert torch.equal(batch[b], lamfast.kde_map(maps[b]))
        assert torch.count_nonzero(batch[2]) == 0

    @pytest.mark.parametrize("shape", [(1, 1), (1, 9), (8, 1), (5, 5), (64, 64), (31, 45)])
    def test_compiled_matches_twin(self, device, shape):
        if not compiled("kde_map", device):
            pytest.skip(f"no compiled kde_map kernel on {device}: the op would be the twin itself")
        m = (torch.rand(shape, generator=torch.Generator().manual_seed(4)) ** 4).to(device)
        assert_close(lamfast.kde_map(m), kde_map_torch(m), "twin")

    def test_non_contiguous_and_half(self, device):
        m = (torch.rand(20, 30, generator=torch.Generator().manual_seed(5)) ** 4).to(device)
        assert_close(lamfast.kde_map(m.t()), kde_map_torch(m.t().contiguous()), "twin")
        half = lamfast.kde_map(m.half())
        assert half.dtype == torch.float16
        assert_close(half, kde_map_torch(m.half().float()), "twin")

    def test_mass_on_one_row_uses_degenerate_gaussian(self, device):
        m = np.zeros((6, 15))
        m[2, 3:12] = np.linspace(0.2, 1.0, 9)
        out = lamfast.kde_map(torch.from_numpy(m).to(device)).cpu().numpy()
        assert_close(out, _direct_degenerate_kde(m, np.array([1.0, 0.0])), "scipy")
        # Off the line the Gaussian is exactly 0; what remains is the FFT's
        # round-off (cuFFT leaves ~1e-17 there, pocketfft happens to leave 0).
        assert_close(out[[0, 1, 3, 4, 5]], np.zeros_like(out[[0, 1, 3, 4, 5]]), "formula")

    def test_mass_on_a_diagonal(self, device):
        m = np.zeros((9, 9))
        m[np.arange(1, 8), np.arange(1, 8)] = np.arange(1, 8)
        out = lamfast.kde_map(torch.from_numpy(m).to(device)).cpu().numpy()
        direction = np.array([1.0, 1.0]) / math.sqrt(2)
        assert_close(out, _direct_degenerate_kde(m, direction), "scipy")

    def test_single_pixel_is_a_delta_and_empty_map_is_zero(self, device):
        m = torch.zeros(7, 9, device=device, dtype=torch.float64)
        assert torch.count_nonzero(lamfast.kde_map(m)) == 0
        m[3, 4] = 0.25
        out = lamfast.kde_map(m)
        assert out[3, 4] == 1 and int((out > 1e-12).sum()) == 1  # FFT round-off elsewhere is ~1e-17
        assert lamfast.kde_map(torch.ones(1, 1, device=device)).item() == 1.0

    @pytest.mark.parametrize(
        "value,match",
        [
            (torch.rand(5), "saliency must be"),
            (torch.rand(2, 3, 4, 5), "saliency must be"),
            (torch.ones(4, 4, dtype=torch.int64), "floating"),
            (torch.tensor([[0.5, -0.1], [0.2, 0.3]]), "non-negative"),
            (torch.tensor([[0.5, float("nan")], [0.2, 0.3]]), "non-negative"),
            (torch.zeros(0, 4), "H, W"),
        ],
    )
    @pytest.mark.parametrize("fn", [lamfast.kde_map, kde_map_torch, torch.ops.lamfast.kde_map], ids=["api", "twin", "op"])
    def test_bad_input(self, fn, value, match):
        with pytest.raises(ValueError, match=match) as info:
            fn(value)
        assert "\n" not in str(info.value).strip()
