"""Heat-map overlays for classifier attributions (PNG-ready uint8)."""
from __future__ import annotations

import numpy as np
import torch

from lamfast.errors import LamfastError


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


def normalise_attribution(attr: torch.Tensor, outlier_perc: float = 2.0) -> torch.Tensor:
    """Display scale of a gradient attribution, as captum's ``visualize_image_attr`` makes it.

    Channels are summed, the absolute value taken, and the map divided by the
    value at which the sorted values' cumulative sum reaches
    ``100 - outlier_perc`` % of the total, then clipped: a few extreme pixels
    no longer turn the rest of the map black.

    Args:
        attr: [C,H,W] or [H,W].
    Returns:
        [H,W] in [0,1]; all zeros for an all-zero map.
    """
    if not 0 <= outlier_perc <= 100:
        raise LamfastError(f"outlier_perc must be in [0, 100], got {outlier_perc}")
    a = (attr.sum(0) if attr.dim() == 3 else attr).abs().double()
    values = a.flatten().sort().values
    cumulative = values.cumsum(0)
    index = int(torch.searchsorted(cumulative, cumulative[-1] * 0.01 * (100.0 - outlier_perc)))
    threshold = values[min(index, values.numel() - 1)]
    if threshold <= 0:
        return torch.zeros_like(a, dtype=torch.float32)
    return (a / threshold).clamp(0, 1).float()
