"""LAM's maps and their sparsity: the saliency of an attribution, the official Gini and the Diffusion Index."""
from __future__ import annotations

import torch

from lamfast.errors import LamfastError


def saliency(attribution: torch.Tensor) -> torch.Tensor:
    """The official ``grad_abs_norm``: ``|Σ_c A|`` over its peak (channels summed before the abs).

    A clip's maps share one peak, so frames compare. An all-zero
    attribution gives an all-zero map (never NaN).

    Args:
        attribution: [C,H,W] (an image) or [*lead, C,H,W] (e.g. [T,C,H,W], a clip).
    Returns:
        [H,W] or [*lead, H,W] in [0, 1], attribution's dtype.

    Example:
        >>> import torch, lamfast
        >>> lamfast.metrics.saliency(torch.tensor([[[1.0, -3.0]], [[1.0, 1.0]]]))
        tensor([[1., 1.]])
    """
    if not isinstance(attribution, torch.Tensor) or attribution.dim() < 3:
        raise LamfastError(f"saliency: attribution must be a tensor [*lead, C, H, W], got "
                           f"{getattr(attribution, 'shape', type(attribution).__name__)}", param="attribution")
    grad = attribution.sum(dim=-3).abs()
    peak = grad.max()
    return grad / peak if bool(peak > 0) else grad


def gini(saliency: torch.Tensor) -> torch.Tensor:
    """Gini coefficient of each map, exactly as the official LAM ``gini``.

    Flatten; subtract the min if it is negative; add 1e-7; sort ascending;
    ``G = Σ(2i - n - 1) x_i / (n Σ x_i)`` for i = 1..n. Computed in float64.

    Args:
        saliency: [H,W] or [*lead, H,W] map(s); the last two dims form one map.
    Returns:
        float64 tensor of shape [*lead] (a 0-d tensor for one map).

    Raises:
        LamfastError: fewer than 2 dims, an empty map, or non-finite values.

    Example:
        >>> import torch, lamfast
        >>> m = torch.zeros(4, 4); m[0, 0] = 1.0  # all mass on one pixel
        >>> round(float(lamfast.gini(m)), 4)
        0.9375
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

    Example:
        >>> import torch, lamfast
        >>> float(lamfast.diffusion_index(torch.ones(4, 4)))  # a flat map: Gini 0
        100.0
    """
    return di_from_gini(gini(saliency))


def di_from_gini(g):
    """DI from a Gini coefficient (a float or a tensor): ``(1 - g) * 100``."""
    return (1.0 - g) * 100.0


def gini_from_di(di):
    """The Gini coefficient from a DI (a float or a tensor): ``1 - di / 100``."""
    return 1.0 - di / 100.0
