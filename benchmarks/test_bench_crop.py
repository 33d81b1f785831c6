"""Receptive-field crops: what a LAM window costs as the image grows.

Targets (P5, closing note; never asserted):

- Per-window LAM time (one 16-px window in the middle, defaults) at 64,
  128, 256 and 512 LR for the bundled TinySR, an EDSR-baseline (16 blocks x
  64, x4) and a global model (channel attention): for local models, 512²
  costs at most 1.5x of 64². Each row also gives the path share (the
  cropped path integral without the image's one forward).
- LAM_Demo-style EDSR (8 blocks x 32, x4) at 192² LR, window in the middle,
  fold 20, 1 thread (``LAMFAST_BENCH_THREADS=1``): at least 15x faster than
  the official-cost loop (batch 1 per step, parameters requiring grad). The
  cold row measures the first call, the reach probe included.
- K = 16 windows (a 4x4 grid) on a 256² LR image with EDSR-baseline:
  windows/s with crops against the whole-image path of the previous
  ``lam_windows`` (``crop="off"``: one forward per chunk, one backward per
  window), target at least 8x. ``LAMFAST_BENCH_FOLD_K16`` (default 10)
  sets the path length of both: the whole-image path takes minutes per step
  count.

Rounds are interleaved (``interleaved.py``): every contender runs once per
round, and ratios are medians of per-round ratios.
"""
from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lamfast
from lamfast.lam import reach as reach_module
from lamfast.models import EDSR, bundled_model

from conftest import DEVICE, synced
from interleaved import report, time_rounds
from lam_cost import official_cost_loop

SIZES = (64, 128, 256, 512)
FOLD_K16 = int(os.environ.get("LAMFAST_BENCH_FOLD_K16", "10"))


class ChannelAttentionSR(nn.Module):
    """A global model: RCAN-style residual blocks with channel attention, x4."""

    def __init__(self, width: int = 32, blocks: int = 2):
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.blocks = nn.ModuleList([nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                                   nn.Conv2d(width, width, 3, padding=1)) for _ in range(blocks)])
        self.attention = nn.ModuleList([nn.Sequential(nn.Conv2d(width, width, 1), nn.Sigmoid())
                                        for _ in range(blocks)])
        self.tail = nn.Conv2d(width, 3 * 16, 3, padding=1)

    def forward(self, x):
        y = self.head(x)
        for body, gate in zip(self.blocks, self.attention):
            r = body(y)
            y = y + r * gate(r.mean(dim=(2, 3), keepdim=True))
        return F.pixel_shuffle(self.tail(y), 4)


def _models():
    torch.manual_seed(0)
    return {
        "tinysr": bundled_model().model,
        "edsr-baseline": EDSR(n_resblocks=16, n_feats=64, scale=4, rgb_range=1.0).eval(),
        "global-ca": ChannelAttentionSR().eval(),
    }


def _image(size: int) -> torch.Tensor:
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(0)).to(DEVICE)


@pytest.mark.parametrize("name", ["tinysr", "edsr-baseline", "global-ca"])
def test_per_window_cost_by_image_size(benchmark, name):
    model = _models()[name].to(DEVICE)
    results = {}

    def contender(size):
        x = _image(size)
        mid = size * 4 // 2 - 8

        def run():
            results[size] = lamfast.lam(model, x, mid, mid, 16)
        return synced(run)

    contenders = {f"{size}px": contender(size) for size in SIZES}
    times = benchmark.pedantic(time_rounds, args=(contenders,), kwargs={"rounds": 2, "warmup": 1}, rounds=1,
                               iterations=1)
    ratios = {f"{size}px / 64px": (f"{size}px", "64px", "<= 1.5 (local models)") for size in SIZES[1:]}
    report(benchmark, f"per-window LAM, {name}, one 16-px window, defaults", times, ratios)
    benchmark.extra_info["runs"] = {
        size: {"crop": r.crop.summary(), "path_integral_s": r.timings["path_integral"], "forward_s": r.timings["forward"]}
        for size, r in results.items()
    }
    from interleaved import REPORTS

    REPORTS[-1][1].extend(f"{size}px: path {r.timings['path_integral']:.3f} s, image forward {r.timings['forward']:.3f} s, "
                          f"crop {r.crop.box}" for size, r in results.items())


def test_lam_demo_edsr_vs_official_cost(benchmark):
    torch.manual_seed(0)
    model = EDSR(n_resblocks=8, n_feats=32, scale=4, rgb_range=1.0).eval().to(DEVICE)
    x = _image(192)
    mid = 192 * 2 - 8
    path, deriv = lamfast.blur_path(x, 20)

    def cold():
        reach_module._CACHE.clear()  # the first call on a model measures its reach
        lamfast.lam(model, x, mid, mid, 16, fold=20)

    contenders = {
        "lamfast": synced(lambda: lamfast.lam(model, x, mid, mid, 16, fold=20)),
        "lamfast_cold": synced(cold),
        "official_cost": synced(lambda: official_cost_loop(model, path, deriv, mid, mid, 16)),
    }
    times = benchmark.pedantic(time_rounds, args=(contenders,), kwargs={"rounds": 3}, rounds=1, iterations=1)
    report(benchmark, "LAM_Demo EDSR 8x32 x4, 192² LR, fold 20", times,
           {"official_cost / lamfast": ("official_cost", "lamfast", ">= 15"),
            "official_cost / lamfast_cold": ("official_cost", "lamfast_cold", ">= 15")})


def test_sixteen_windows_vs_whole_image_path(benchmark):
    torch.manual_seed(0)
    model = EDSR(n_resblocks=16, n_feats=64, scale=4, rgb_range=1.0).eval().to(DEVICE)
    x = _image(256)
    windows = [(h, w, 16) for h in range(0, 1009, 256) for w in range(0, 1009, 256)]  # 4x4 (grid of 256, remainder dropped)
    assert len(windows) == 16
    contenders = {
        "crop": synced(lambda: lamfast.lam_windows(model, x, windows, fold=FOLD_K16)),
        "whole_image": synced(lambda: lamfast.lam_windows(model, x, windows, fold=FOLD_K16, crop="off")),
    }
    times = benchmark.pedantic(time_rounds, args=(contenders,), kwargs={"rounds": 1, "warmup": 0}, rounds=1,
                               iterations=1)
    report(benchmark, f"16 windows, EDSR-baseline x4, 256² LR, fold {FOLD_K16}", times,
           {"windows/s crop over whole_image": ("whole_image", "crop", ">= 8")})
    benchmark.extra_info["windows_per_s"] = {name: 16 / min(t) for name, t in times.items()}
