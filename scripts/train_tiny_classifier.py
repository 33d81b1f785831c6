"""Train the bundled shapes classifier on procedurally generated images (CPU, a few minutes).

    python scripts/train_tiny_classifier.py

Writes lamfast/data/shapes_cnn.pt (weights only). tests/test_bundled_classifier.py
checks the shipped weights: accuracy and Grad-CAM localisation on held-out
generated images (seed 10_000, never used here).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lamfast.models.classifier import ShapesCNN
from lamfast.shapes import make_shapes

DATA = Path(__file__).resolve().parents[1] / "lamfast" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2500)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    images, labels, _ = make_shapes(6000, seed=1)
    model = ShapesCNN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.iters)
    start = time.time()
    for it in range(args.iters):
        idx = torch.randint(0, len(images), (args.batch,))
        x, y = images[idx], labels[idx]
        if it % 2:
            x = x.flip(-1)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if it % 250 == 0 or it == args.iters - 1:
            print(f"iter {it:5d}  loss {loss.item():.3f}  {time.time() - start:.0f}s", flush=True)
    model.eval()
    test_x, test_y, _ = make_shapes(500, seed=10_000)
    with torch.no_grad():
        acc = (model(test_x).argmax(-1) == test_y).float().mean().item()
    print(f"held-out accuracy {acc:.3f}")
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, DATA / "shapes_cnn.pt")
    print(f"wrote {DATA / 'shapes_cnn.pt'} ({(DATA / 'shapes_cnn.pt').stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
