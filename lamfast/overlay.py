"""Heat-map overlays for classifier attributions (PNG-ready uint8)."""
from __future__ import annotations

import numpy as np
import torch


def jet(values: torch.Tensor) -> np.ndarray:
    """The classic jet colour map of [H,W] values in [0,1]: [H,W,3] uint8."""
    v = values.detach().float().clamp(0, 1).cpu().numpy()
    r = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return (np.stack([r, g, b], -1) * 255).astype(np.uint8)


def overlay(image: torch.Tensor, heat: torch.Tensor, image_weight: float = 0.5) -> np.ndarray:
    """Blend an image [3,H,W] in [0,1] with a heat map [H,W] in [0,1] (pytorch-grad-cam's look)."""
    img = image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    mixed = (1 - image_weight) * jet(heat).astype(np.float32) / 255 + image_weight * img
    return (mixed / mixed.max() * 255).astype(np.uint8)
