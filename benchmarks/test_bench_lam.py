"""LAM end to end on an EDSR-sized x4 model (64 channels, 16 blocks), 64² LR.

Three rows, same path, same window, same thread count:
- ``lamfast``: ``lamfast.lam`` at defaults;
- ``official_cost``: the official loop's cost (batch 1, weight gradients,
  per-step numpy);
- ``bare``: forward + input-only backward passes in lamfast's chunks.
Targets at 1 thread (``LAMFAST_BENCH_THREADS=1``): lamfast >= 1.4x faster
than official_cost, and <= 1.05x bare. On a GPU (``LAMFAST_BENCH_DEVICE=cuda``,
``LAMFAST_BENCH_LR=128``) the target is >= 20x official_cost.
``LAMFAST_BENCH_FOLD`` shortens the path for a quick look (default 50).
"""
from __future__ import annotations

import os

import pytest
import torch

import lamfast
from lamfast.models import EDSR
from lamfast.lam.objective import window_objective
from lamfast.path import SavedTensorMeter, chunk_size, point_bytes

from conftest import DEVICE, synced
from lam_cost import bare_cost_loop, official_cost_loop

FOLD = int(os.environ.get("LAMFAST_BENCH_FOLD", "50"))
LR = int(os.environ.get("LAMFAST_BENCH_LR", "64"))
H, W, SIZE = 120, 100, 16


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = EDSR(n_resblocks=16, n_feats=64, scale=4, rgb_range=1.0).eval().to(DEVICE)
    image = torch.rand(3, LR, LR, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    path, deriv = lamfast.blur_path(image, FOLD)
    return model, image, path, deriv


@pytest.mark.benchmark(group="lam-edsr64x16-x4-64px")
def test_lamfast(benchmark, setup):
    model, image, _, _ = setup
    result = benchmark.pedantic(synced(lamfast.lam), args=(model, image, H, W, SIZE), kwargs={"fold": FOLD},
                                rounds=2, iterations=1)
    benchmark.extra_info["batch_size"] = result.batch_size


@pytest.mark.benchmark(group="lam-edsr64x16-x4-64px")
def test_official_cost(benchmark, setup):
    model, _, path, deriv = setup
    benchmark.pedantic(synced(official_cost_loop), args=(model, path, deriv, H, W, SIZE), rounds=2, iterations=1)


@pytest.mark.benchmark(group="lam-edsr64x16-x4-64px")
def test_bare(benchmark, setup):
    model, image, path, _ = setup
    for p in model.parameters():
        p.requires_grad_(False)
    point = image[None].clone().requires_grad_(True)
    with SavedTensorMeter() as meter:
        window_objective(model(point), H, W, SIZE, "compat")
    batch = chunk_size(point_bytes(meter.bytes, point), point.device, FOLD)  # the chunk lamfast picks here
    benchmark.pedantic(synced(bare_cost_loop), args=(model, path, H, W, SIZE, batch), rounds=2, iterations=1)
    benchmark.extra_info["batch_size"] = batch
