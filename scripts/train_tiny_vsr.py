"""Train the bundled x2 TinyVSR on clips made from scikit-image's photos (CPU, a few minutes).

    pip install scikit-image && python scripts/train_tiny_vsr.py

A clip is ``frames`` crops of one photo, each moved by a constant velocity
of a few HR pixels per frame (random per clip, known), made LR by PIL
bicubic as single images are; the target is the centre HR frame. An odd
velocity moves a frame by half an LR pixel, so the neighbouring frames hold
samples the centre one lacks, and a model that uses them beats bicubic and
single-frame SR.

Writes lamfast/data/tinyvsr_x2.pt (weights only) and the held-out demo clip
lamfast/data/clip_coffee/frame_K.png (HR frames, from the photo that
trained neither bundled model) with its motion in motion.json. On that clip
the model must beat bicubic by >= 0.5 dB PSNR (tests/test_bundled_video_model.py
checks the shipped weights).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lamfast.imageio import to_tensor
from lamfast.models.tinyvsr import TinyVSR

DATA = Path(__file__).resolve().parents[1] / "lamfast" / "data"
SCALE, FRAMES = 2, 5
# The demo clip: 128x128 HR frames of the held-out coffee photo, moving (rows, columns) HR px per frame.
DEMO_BOX, DEMO_VELOCITY = (48, 160, 128), (1, 3)


def rgb(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(arr).convert("RGB")


def clip_frames(photo: Image.Image, top: int, left: int, size: int, velocity: tuple[int, int]) -> list[Image.Image]:
    """``FRAMES`` HR crops of ``photo``, frame t at (top, left) + (t - centre) * velocity."""
    c = FRAMES // 2
    return [photo.crop((left + (t - c) * velocity[1], top + (t - c) * velocity[0],
                        left + (t - c) * velocity[1] + size, top + (t - c) * velocity[0] + size))
            for t in range(FRAMES)]


def lr_of(frame: Image.Image) -> Image.Image:
    return frame.resize((frame.width // SCALE, frame.height // SCALE), Image.BICUBIC)


def psnr(a: torch.Tensor, b: torch.Tensor, shave: int = SCALE) -> float:
    a = a.clamp(0, 1)[..., shave:-shave, shave:-shave]
    b = b[..., shave:-shave, shave:-shave]
    return float(10 * torch.log10(1.0 / F.mse_loss(a, b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=48, help="HR patch size")
    parser.add_argument("--max-speed", type=int, default=3, help="largest velocity, HR px per frame")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from skimage import data

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    photos = [rgb(data.chelsea()), rgb(data.camera()), rgb(data.rocket()), rgb(data.astronaut())]
    model = TinyVSR(frames=FRAMES, scale=SCALE)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.iters)
    p, v = args.patch, args.max_speed
    reach = (FRAMES // 2) * v
    start = time.time()
    for it in range(args.iters):
        lrs, hrs = [], []
        for _ in range(args.batch):
            photo = photos[rng.integers(len(photos))]
            velocity = (int(rng.integers(-v, v + 1)), int(rng.integers(-v, v + 1)))
            top = int(rng.integers(reach, photo.height - p - reach))
            left = int(rng.integers(reach, photo.width - p - reach))
            frames = clip_frames(photo, top, left, p, velocity)
            lrs.append(torch.stack([to_tensor(lr_of(f)) for f in frames]))
            hrs.append(to_tensor(frames[FRAMES // 2]))
        loss = F.l1_loss(model(torch.stack(lrs)), torch.stack(hrs))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if it % 500 == 0 or it == args.iters - 1:
            print(f"iter {it:5d}  l1 {loss.item():.4f}  {time.time() - start:.0f}s", flush=True)

    model.eval()
    coffee = Image.open(DATA / "coffee.png").convert("RGB")
    top, left, size = DEMO_BOX
    frames = clip_frames(coffee, top, left, size, DEMO_VELOCITY)
    out = DATA / "clip_coffee"
    out.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        frame.save(out / f"frame_{t}.png")
    (out / "motion.json").write_text(json.dumps({
        "source": "coffee.png", "box_top_left_size": list(DEMO_BOX), "velocity_rows_cols_hr_px_per_frame":
        list(DEMO_VELOCITY), "scale": SCALE, "frames": FRAMES}, indent=2) + "\n")
    lr = torch.stack([to_tensor(lr_of(f)) for f in frames])
    hr = to_tensor(frames[FRAMES // 2])
    with torch.no_grad():
        sr = model(lr[None])[0]
    bicubic = to_tensor(lr_of(frames[FRAMES // 2]).resize((size, size), Image.BICUBIC))
    gain = psnr(sr, hr) - psnr(bicubic, hr)
    print(f"held-out coffee clip: TinyVSR {psnr(sr, hr):.2f} dB, bicubic {psnr(bicubic, hr):.2f} dB, gain {gain:+.2f} dB")
    target = DATA / f"tinyvsr_x{SCALE}.pt"
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, target)
    print(f"wrote {target} ({target.stat().st_size / 1024:.0f} KiB) and {out}/")
    if not math.isfinite(gain) or gain < 0.5:
        raise SystemExit(f"gain {gain:.2f} dB is below the 0.5 dB target")


if __name__ == "__main__":
    main()
