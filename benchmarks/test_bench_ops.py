"""Each op: compiled kernel vs pure-torch twin; kde_map vs scipy.

Targets (2-core CPU): kde_map >= 50x faster than scipy at 128²; blur_path's
compiled kernel at least as fast as its twin.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lamfast.ops import blur_path_torch, kde_map_torch, path_accumulate_torch

from conftest import DEVICE, requires_ext, synced

SIZES = [64, 128, 256]
FOLD = 50


def _image(size):
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(0)).to(DEVICE)


def _saliency(size):
    return (torch.rand(size, size, generator=torch.Generator().manual_seed(1)) ** 8).to(DEVICE)


@pytest.mark.benchmark(group="blur_path")
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("impl", [pytest.param("compiled", marks=requires_ext), "twin"])
def test_blur_path(benchmark, size, impl):
    fn = torch.ops.lamfast.blur_path if impl == "compiled" else blur_path_torch
    image = _image(size)
    benchmark(synced(fn), image, FOLD, 1.2, 9)


@pytest.mark.benchmark(group="path_accumulate")
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("impl", [pytest.param("compiled", marks=requires_ext), "twin"])
def test_path_accumulate(benchmark, size, impl):
    fn = torch.ops.lamfast.path_accumulate if impl == "compiled" else path_accumulate_torch
    gen = torch.Generator().manual_seed(2)
    grads = torch.randn(FOLD, 3, size, size, generator=gen).to(DEVICE)
    deriv = torch.randn(FOLD, 3, size, size, generator=gen).to(DEVICE)
    acc = torch.zeros(3, size, size, device=DEVICE)
    benchmark(synced(fn), acc, grads, deriv)


@pytest.mark.benchmark(group="kde_map")
@pytest.mark.parametrize("size", [64, 128, 192] + ([512] if DEVICE.type == "cuda" else []))
@pytest.mark.parametrize("impl", [pytest.param("compiled", marks=requires_ext), "twin", "scipy"])
def test_kde_map(benchmark, size, impl):
    sal = _saliency(size)
    if impl == "scipy":
        if size > 192:
            pytest.skip("scipy's O(N^2) KDE takes minutes at this size")
        from scipy import stats

        def scipy_kde(m):
            H, W = m.shape
            ys, xs = np.mgrid[0:H:1, 0:W:1]
            pts = np.vstack([xs.ravel(), ys.ravel()])
            z = stats.gaussian_kde(pts, weights=m.ravel())(pts).reshape(H, W)
            return z / z.max()

        benchmark.pedantic(scipy_kde, args=(sal.double().cpu().numpy(),), rounds=2 if size > 128 else 3, iterations=1)
        return
    fn = torch.ops.lamfast.kde_map if impl == "compiled" else kde_map_torch
    benchmark(synced(fn), sal)
