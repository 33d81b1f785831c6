"""Write the bundled classifier's demo image, lamfast/data/shapes_sample.png.

    python scripts/make_shapes_sample.py

One held-out generated image (seed 20006, a cross off the centre, never in
training), enlarged 4x so the overlay is easy to look at; ``lamfast cam``
shrinks it back to the classifier's 64x64.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lamfast.shapes import make_shapes

SEED = 20006
OUT = Path(__file__).resolve().parents[1] / "lamfast" / "data" / "shapes_sample.png"


def main() -> None:
    images, _, _ = make_shapes(1, seed=SEED)
    arr = (images[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(arr).resize((256, 256), Image.BICUBIC).save(OUT, optimize=True)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
