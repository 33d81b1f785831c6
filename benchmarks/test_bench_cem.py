"""CEM for one ROI: lamfast.cem against the official loop (every block, whole image, batches of 100, the
interventions built as 8-bit numpy images and made tensors as ToTensor does), written out in
tests/cem/official_cem.py. The official SR configuration: ROI (152, 96) of side 32, blocks of 8 HR px
(2 LR px at x4), 3 coarse and 50 fine interventions, tol 0.01, on the bundled astronaut (64² LR).

- the bundled TinySR x4 (trained; reach 6 LR px): paired rounds (``interleaved.py``);
- LAM_Demo's EDSR (16 blocks x 64, x4) at random init: its reach (36 LR px) covers the whole 64²
  input, so both run every block on the whole image; one round each (about 10 min together on 2
  threads), forwards and wall time.

Each records the forwards (batch rows) of both and checks they computed the same map.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "cem"))
from interleaved import report, time_rounds  # noqa: E402
from official_cem import official_cem  # noqa: E402

import lamfast  # noqa: E402
from lamfast.cem import default_bank  # noqa: E402
from lamfast.request import prepare_input  # noqa: E402

ROI = (152, 96, 32)
CONFIG = {"block_size": 8, "coarse": 3, "fine": 50, "tol": 0.01, "seed": 0}


def _case(model):
    x = prepare_input(model, "bundled")
    lr = x.tensor()
    return lr, (lr.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), np.asarray(x.hr)


def _official(model, lr_u8, gt):
    # the bundled bank's 8x8 patches, resized to the 2x2 blocks with OpenCV as the official loop does
    return official_cem(model, lr_u8, gt, *ROI, scale=4, bank=default_bank().patches, batch=100, **CONFIG)


def _record(benchmark, r, ref):
    diff = float(np.abs(r.effect - ref["effect"]).max())
    benchmark.extra_info.update({"forwards_lamfast": r.forwards, "forwards_official": ref["forwards"],
                                 "forwards_ratio": ref["forwards"] / r.forwards, "official_forwards_predicted":
                                 r.official_forwards, "max_effect_diff_db": diff, "path": r.path,
                                 "counts": r.counts, "effect_range": list(r.effect_range)})
    return diff


@pytest.mark.benchmark(group="cem")
def test_cem_tinysr_against_the_official_loop_interleaved(benchmark):
    model = lamfast.load_model().model
    lr, lr_u8, gt = _case(model)
    results = {}
    contenders = {"official loop (every block, batch 100)": lambda: results.update(ref=_official(model, lr_u8, gt)),
                  "lamfast.cem": lambda: results.update(r=lamfast.cem(model, lr, gt, *ROI, **CONFIG))}
    times = benchmark.pedantic(lambda: time_rounds(contenders, rounds=5), rounds=1, iterations=1)
    diff = _record(benchmark, results["r"], results["ref"])
    report(benchmark, f"CEM, TinySR x4, 64² LR, official configuration ({results['r'].forwards} vs "
                      f"{results['ref']['forwards']} forwards, max |Δ effect| {diff:.1e} dB)", times,
           {"official / lamfast": ("official loop (every block, batch 100)", "lamfast.cem", "> 1")})


@pytest.mark.benchmark(group="cem")
def test_cem_edsr_lam_demo_against_the_official_loop(benchmark):
    from lamfast.models import EDSR

    torch.manual_seed(0)
    model = EDSR(n_resblocks=16, n_feats=64, scale=4, rgb_range=1.0).eval()
    lr, lr_u8, gt = _case(model)
    times: dict[str, list[float]] = {}

    def once():
        t = time.perf_counter()
        ref = _official(model, lr_u8, gt)
        times["official loop (every block, batch 100)"] = [time.perf_counter() - t]
        time.sleep(1)
        t = time.perf_counter()
        r = lamfast.cem(model, lr, gt, *ROI, **CONFIG)
        times["lamfast.cem"] = [time.perf_counter() - t]
        return r, ref

    r, ref = benchmark.pedantic(once, rounds=1, iterations=1)
    diff = _record(benchmark, r, ref)
    report(benchmark, f"CEM, LAM_Demo EDSR 16x64 x4 (random init), 64² LR, official configuration "
                      f"({r.forwards} vs {ref['forwards']} forwards, max |Δ effect| {diff:.1e} dB; one round)", times,
           {"official / lamfast": ("official loop (every block, batch 100)", "lamfast.cem", "> 1")})
