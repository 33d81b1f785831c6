"""FAIG at 100 steps: lamfast.faig (steps batched through torch.func.vmap, chunks of 8) against the official
algorithm's loop (a network rebuilt from the interpolated state dict at every step, batch 1), written out in
tests/sr/test_faig.py. Model: an MSRResNet-style network (32 features, 4 blocks, x2), random init, the target
the baseline moved by 0.05·N(0,1); images 32x32. Paired rounds (see ``interleaved.py``)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sr"))
from interleaved import report, time_rounds  # noqa: E402
from test_faig import MSRResNetLike, _pair, official_faig  # noqa: E402

import lamfast  # noqa: E402

STEPS = 100


@pytest.mark.benchmark(group="faig")
def test_faig_against_the_official_loop_interleaved(benchmark):
    base, target = _pair(MSRResNetLike, torch.float32, feat=32, blocks=4)
    g = torch.Generator().manual_seed(1)
    x1, x2 = (torch.rand(1, 3, 32, 32, generator=g) for _ in range(2))
    gt = torch.rand(1, 3, 64, 64, generator=g)
    contenders = {"official loop (batch 1, rebuilt nets)": lambda: official_faig(base, target, x1, x2, gt, STEPS),
                  "lamfast.faig (vmap, chunks of 8)": lambda: lamfast.faig(base, target, x1, x2, gt, steps=STEPS)}
    times = benchmark.pedantic(lambda: time_rounds(contenders, rounds=5), rounds=1, iterations=1)
    report(benchmark, "FAIG, 100 steps, MSRResNet-style 32x4, 32² LR", times,
           {"lamfast / official": ("lamfast.faig (vmap, chunks of 8)", "official loop (batch 1, rebuilt nets)", "< 1")})
