"""Turning transformer layer outputs into [B,C,h,w] maps for CAM."""
from __future__ import annotations

import math

import torch

from lamfast.errors import LamfastError


def vit_reshape(num_extra_tokens: int = 1):
    """For ViT-like tokens [B, extra + h*w, C]: drop the extra (CLS, distillation) tokens, square grid.

    Example:
        >>> import torch
        >>> from lamfast.cam import vit_reshape
        >>> vit_reshape(1)(torch.rand(2, 1 + 49, 8)).shape  # [B, 1 + h*w, C] -> [B, C, h, w]
        torch.Size([2, 8, 7, 7])
    """

    def transform(t: torch.Tensor) -> torch.Tensor:
        if t.dim() != 3:
            raise LamfastError(f"vit_reshape: expected tokens [B,N,C], got {tuple(t.shape)}")
        tokens = t[:, num_extra_tokens:, :]
        side = math.isqrt(tokens.shape[1])
        if side * side != tokens.shape[1]:
            raise LamfastError(
                f"vit_reshape: {tokens.shape[1]} patch tokens after dropping {num_extra_tokens} extra do not form a "
                "square grid (check {param})", param="num_extra_tokens"
            )
        return tokens.reshape(t.shape[0], side, side, t.shape[2]).permute(0, 3, 1, 2)

    return transform


def swin_reshape(t: torch.Tensor) -> torch.Tensor:
    """For Swin stage outputs: NHWC [B,h,w,C] (timm) or NLC [B,h*w,C] -> [B,C,h,w].

    Example:
        >>> import torch
        >>> from lamfast.cam import swin_reshape
        >>> swin_reshape(torch.rand(2, 7, 7, 8)).shape  # NHWC -> NCHW
        torch.Size([2, 8, 7, 7])
    """
    if t.dim() == 4:
        return t.permute(0, 3, 1, 2)
    if t.dim() == 3:
        side = math.isqrt(t.shape[1])
        if side * side != t.shape[1]:
            raise LamfastError(f"swin_reshape: {t.shape[1]} tokens do not form a square grid")
        return t.reshape(t.shape[0], side, side, t.shape[2]).permute(0, 3, 1, 2)
    raise LamfastError(f"swin_reshape: expected [B,h,w,C] or [B,L,C], got {tuple(t.shape)}")
