"""Deletion and insertion AUC (Petsiuk et al., RISE, BMVC 2018), batched.

Deletion removes pixels from the image, most salient first, into a baseline
(zeros); insertion adds them into a blurred copy. After each step the
target's softmax probability is recorded; the score is the area under that
curve over the fraction of pixels changed (RISE's trapezoid). Lower deletion
and higher insertion mean a more faithful map.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from lamfast.gaussian import gaussian_blur
from lamfast.modelstate import attribution_state
from lamfast.targets import target_indices

# RISE's insertion canvas: the image blurred with an 11x11 Gaussian of sigma 5.
INSERTION_SIGMA, INSERTION_SIZE = 5.0, 11


def _curve(model: nn.Module, start: torch.Tensor, finish: torch.Tensor, saliency: torch.Tensor, target: torch.Tensor,
           step: int, batch_size: int) -> torch.Tensor:
    """Probabilities as pixels move from ``start`` to ``finish`` in saliency order: [B, n+1]."""
    B, C, H, W = start.shape
    n = math.ceil(H * W / step)
    order = saliency.reshape(B, -1).argsort(dim=1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(H * W, device=order.device).expand(B, -1))
    rank = rank.reshape(B, 1, H, W)
    probs = []
    with attribution_state(model), torch.no_grad():
        for s0 in range(0, n + 1, batch_size):
            ks = torch.arange(s0, min(s0 + batch_size, n + 1), device=start.device)
            changed = rank[:, None] < (ks * step).view(1, -1, 1, 1, 1)  # [B, k, 1, H, W]
            frames = torch.where(changed, finish[:, None], start[:, None]).reshape(-1, C, H, W)
            p = torch.softmax(model(frames), dim=-1).reshape(B, len(ks), -1)
            probs.append(p.gather(2, target.view(B, 1, 1).expand(B, len(ks), 1))[..., 0])
    return torch.cat(probs, dim=1)


def _auc(curve: torch.Tensor) -> torch.Tensor:
    return (curve.sum(1) - curve[:, 0] / 2 - curve[:, -1] / 2) / (curve.shape[1] - 1)


def _targets(model, images, target):
    with attribution_state(model), torch.no_grad():
        logits = model(images)
    return target_indices(target, images.shape[0], logits=logits)  # None: each image's prediction


def deletion_auc(model: nn.Module, images: torch.Tensor, saliency: torch.Tensor, target=None, step: int | None = None,
                 batch_size: int = 64) -> torch.Tensor:
    """Deletion AUC per image: [B]. ``images`` [B,C,H,W], ``saliency`` [B,H,W].

    ``step`` pixels change per frame (default: H·W/50); ``batch_size`` frames per forward.
    """
    step = step or max(1, images.shape[-1] * images.shape[-2] // 50)
    t = _targets(model, images, target)
    return _auc(_curve(model, images, torch.zeros_like(images), saliency, t, step, batch_size))


def insertion_auc(model: nn.Module, images: torch.Tensor, saliency: torch.Tensor, target=None, step: int | None = None,
                  batch_size: int = 64) -> torch.Tensor:
    """Insertion AUC per image: [B], starting from each image blurred as RISE's canvas
    (:func:`lamfast.gaussian.gaussian_blur`, sigma 5, 11x11)."""
    step = step or max(1, images.shape[-1] * images.shape[-2] // 50)
    t = _targets(model, images, target)
    return _auc(_curve(model, gaussian_blur(images, INSERTION_SIGMA, INSERTION_SIZE), images, saliency, t, step,
                       batch_size))
