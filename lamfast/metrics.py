"""Sparsity metrics of attribution maps: the official LAM Gini and Diffusion Index."""
from __future__ import annotations

import torch

from lamfast.errors import LamfastError


def gini(saliency: torch.Tensor) -> torch.Tensor:
    """Gini coefficient of each map, exactly as the official LAM ``gini``.

    Flatten; subtract the min if it is negative; add 1e-7; sort ascending;
    ``G = Σ(2i - n - 1) x_i / (n Σ x_i)`` for i = 1..n. Computed in float64.

    Args:
        saliency: [H,W] or [*lead, H,W] map(s); the last two dims form one map.
    Returns:
        float64 tensor of shape [*lead] (a 0-d tensor for one map).
    Raises:
        ValueError: fewer than 2 dims, an empty map, or non-finite values.
    """
    if not isinstance(saliency, torch.Tensor) or saliency.dim() < 2:
        raise LamfastError(f"gini: saliency must be a tensor [*lead, H, W], got {getattr(saliency, 'shape', type(saliency))}")
    if saliency.shape[-1] * saliency.shape[-2] == 0:
        raise LamfastError(f"gini: saliency must not be empty, got shape {tuple(saliency.shape)}")
    x = saliency.detach().to(torch.float64).flatten(-2)
    if not bool(torch.isfinite(x).all()):
        raise LamfastError("gini: saliency contains NaN or inf")
    low = x.amin(dim=-1, keepdim=True)
    x = torch.where(low < 0, x - low, x) + 1e-7
    x, _ = torch.sort(x, dim=-1)
    n = x.shape[-1]
    index = torch.arange(1, n + 1, dtype=torch.float64, device=x.device)
    return ((2 * index - n - 1) * x).sum(-1) / (n * x.sum(-1))


def diffusion_index(saliency: torch.Tensor) -> torch.Tensor:
    """Diffusion Index ``(1 - gini) * 100`` of each map: [*lead] float64.

    Note that it depends on the map's size (n is the number of LR pixels).
    """
    return (1.0 - gini(saliency)) * 100.0
