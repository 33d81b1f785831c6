"""One DI-map measurement in its own process: ``python dimap_worker.py MODEL WINDOWS``.

MODEL is ``tinysr`` (the bundled one) or ``edsr_baseline`` (16 blocks, 64 features, x4, random
init, seeded); the input is the bundled astronaut's 64x64 LR top-left crop; WINDOWS is ``grid``
(the 16x16 grid of 16-px windows, through lamfast.di_map), or ``single`` (one lamfast.lam call on
the grid's window (96, 96), after a warm-up call). Prints one JSON line.
"""
from __future__ import annotations

import json
import sys
import time

import torch

import lamfast
from lamfast.models import EDSR, bundled_model, data_path
from lamfast.request import prepare_input


def main() -> None:
    which, windows = sys.argv[1], sys.argv[2]
    fold = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    if which == "tinysr":
        model = bundled_model().model
    else:
        torch.manual_seed(0)
        model = EDSR(n_resblocks=16, n_feats=64, scale=4, rgb_range=1.0).eval()
    x = prepare_input(None, data_path("astronaut.png"), scale=4).tensor()[:, :64, :64].contiguous()
    lamfast.lam(model, x, 96, 96, 16, fold=2)  # warm-up: the reach probe, first-call costs
    start = time.perf_counter()
    if windows == "grid":
        d = lamfast.di_map(model, x, 16, fold=fold, keep_maps=False)
        out = {"windows": d.shape[0] * d.shape[1], "cropped": sum(c.box is not None for c in d.crops),
               "mean_di": float(d.di.mean())}
    else:
        r = lamfast.lam(model, x, 96, 96, 16, fold=fold)
        out = {"windows": 1, "cropped": int(r.crop.box is not None), "di": r.di}
    out.update(model=which, mode=windows, fold=fold, seconds=time.perf_counter() - start,
               threads=torch.get_num_threads(), extension=lamfast.ext_available())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
