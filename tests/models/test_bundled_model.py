"""The shipped TinySR weights: small, and better than bicubic on a held-out image."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from lamfast.imageio import prepare_images, read_rgb, to_tensor
from lamfast.models import bundled_model, data_path


def psnr(a: torch.Tensor, b: torch.Tensor, shave: int) -> float:
    a, b = a.clamp(0, 1)[..., shave:-shave, shave:-shave], b[..., shave:-shave, shave:-shave]
    return float(10 * torch.log10(1.0 / F.mse_loss(a, b)))


def test_weights_are_small():
    assert data_path("tinysr_x4.pt").stat().st_size < 1_000_000


def test_beats_bicubic_by_half_a_db_on_held_out_image():
    model = bundled_model().model
    assert model.scale == 4
    hr, lr = prepare_images(read_rgb(data_path("coffee.png"))[0], 4)  # coffee is not in the training set
    with torch.no_grad():
        sr = model(to_tensor(lr)[None])[0]
    bicubic = to_tensor(lr.resize(hr.size, Image.BICUBIC))
    gain = psnr(sr, to_tensor(hr), 4) - psnr(bicubic, to_tensor(hr), 4)
    assert gain >= 0.5, f"TinySR gains only {gain:.2f} dB over bicubic"
