"""Train the bundled x4 TinySR on scikit-image's bundled images (CPU, a few minutes).

    pip install scikit-image && python scripts/train_tiny_sr.py

Writes lamfast/data/tinysr_x4.pt (weights only), the demo image
lamfast/data/astronaut.png (the reference case's 256x256 HR) and the
held-out lamfast/data/coffee.png, on which the model must beat bicubic by
>= 0.5 dB PSNR (tests/test_bundled_model.py checks the shipped weights).
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lamfast.imageio import prepare_images, to_tensor
from lamfast.models import TinySR

DATA = Path(__file__).resolve().parents[1] / "lamfast" / "data"
SCALE = 4


def rgb(arr: np.ndarray) -> Image.Image:
    img = Image.fromarray(arr)
    return img.convert("RGB")


def psnr(a: torch.Tensor, b: torch.Tensor, shave: int = SCALE) -> float:
    a = a.clamp(0, 1)[..., shave:-shave, shave:-shave]
    b = b[..., shave:-shave, shave:-shave]
    return float(10 * torch.log10(1.0 / F.mse_loss(a, b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=24, help="LR patch size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from skimage import data

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    DATA.mkdir(parents=True, exist_ok=True)

    demo = rgb(data.astronaut()).resize((256, 256), Image.BICUBIC)
    demo.save(DATA / "astronaut.png")
    held_out = rgb(data.coffee()).resize((384, 256), Image.BICUBIC)
    held_out.save(DATA / "coffee.png")

    train_images = [rgb(data.chelsea()), rgb(data.camera()), rgb(data.rocket()), rgb(data.astronaut())]
    pairs = []
    for img in train_images:
        hr, lr = prepare_images(img, SCALE)
        pairs.append((to_tensor(hr), to_tensor(lr)))

    model = TinySR(scale=SCALE, width=32, depth=4, bicubic_skip=True)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.iters)
    p = args.patch
    start = time.time()
    for it in range(args.iters):
        lrs, hrs = [], []
        for _ in range(args.batch):
            hr, lr = pairs[rng.integers(len(pairs))]
            y = int(rng.integers(0, lr.shape[1] - p + 1))
            x = int(rng.integers(0, lr.shape[2] - p + 1))
            lr_p = lr[:, y : y + p, x : x + p]
            hr_p = hr[:, y * SCALE : (y + p) * SCALE, x * SCALE : (x + p) * SCALE]
            if rng.random() < 0.5:
                lr_p, hr_p = lr_p.flip(-1), hr_p.flip(-1)
            lrs.append(lr_p)
            hrs.append(hr_p)
        loss = F.l1_loss(model(torch.stack(lrs)), torch.stack(hrs))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if it % 500 == 0 or it == args.iters - 1:
            print(f"iter {it:5d}  l1 {loss.item():.4f}  {time.time() - start:.0f}s", flush=True)

    model.eval()
    hr, lr = prepare_images(held_out, SCALE)
    hr_t, lr_t = to_tensor(hr), to_tensor(lr)
    with torch.no_grad():
        sr = model(lr_t[None])[0]
    bicubic = to_tensor(lr.resize(hr.size, Image.BICUBIC))
    gain = psnr(sr, hr_t) - psnr(bicubic, hr_t)
    print(f"held-out coffee: TinySR {psnr(sr, hr_t):.2f} dB, bicubic {psnr(bicubic, hr_t):.2f} dB, gain {gain:+.2f} dB")
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, DATA / "tinysr_x4.pt")
    print(f"wrote {DATA / 'tinysr_x4.pt'} ({(DATA / 'tinysr_x4.pt').stat().st_size / 1024:.0f} KiB)")
    if not math.isfinite(gain) or gain < 0.5:
        raise SystemExit(f"gain {gain:.2f} dB is below the 0.5 dB target")


if __name__ == "__main__":
    main()
