"""Layers shared by the LAM_Demo model-zoo architectures (CARN, SAN, RNAN).

Each layer keeps the parameter names and shapes of the zoo's checkpoints, so
those load strictly. Shapes: every block maps [B,C,H,W] -> [B,C,H,W] unless
said otherwise.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from lamfast.errors import LamfastError

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


def conv3(cin: int, cout: int, k: int = 3, bias: bool = True) -> nn.Conv2d:
    """A 'same' conv (padding k // 2)."""
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)


class MeanShift(nn.Conv2d):
    """1x1 conv adding ``sign * scale * mean`` (EDSR-style; its weight and bias are in the checkpoint)."""

    def __init__(self, scale: float, sign: int = -1, mean=DIV2K_MEAN):
        super().__init__(3, 3, kernel_size=1)
        self.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.bias.data = sign * scale * torch.tensor(mean)
        for p in self.parameters():
            p.requires_grad = False


class ResBlock(nn.Module):
    """conv, ReLU, conv, plus the input (``body.0``, ``body.2``)."""

    def __init__(self, n_feats: int):
        super().__init__()
        self.body = nn.Sequential(conv3(n_feats, n_feats), nn.ReLU(True), conv3(n_feats, n_feats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class Upsampler(nn.Sequential):
    """Conv + PixelShuffle(2) per factor 2 (or one PixelShuffle(3)): [B,C,H,W] -> [B,C,sH,sW]."""

    def __init__(self, scale: int, n_feats: int, relu: bool = False):
        layers: list[nn.Module] = []
        if scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [conv3(n_feats, 4 * n_feats)] + ([nn.ReLU(True)] if relu else []) + [nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [conv3(n_feats, 9 * n_feats)] + ([nn.ReLU(True)] if relu else []) + [nn.PixelShuffle(3)]
        else:
            raise LamfastError(f"scale must be a power of 2 or 3, got {scale}")
        super().__init__(*layers)


def upsampler_scale(sd: Mapping[str, torch.Tensor], prefix: str, n_feats: int) -> int:
    """The SR scale of an :class:`Upsampler` stored under ``prefix`` (e.g. ``"tail.0."``)."""
    weights = sorted(k for k in sd if k.startswith(prefix) and k.endswith(".weight") and sd[k].dim() == 4)
    if len(weights) == 1 and sd[weights[0]].shape[0] == 9 * n_feats:
        return 3
    if not weights or any(sd[k].shape[0] != 4 * n_feats for k in weights):
        raise KeyError(f"no upsampler under {prefix!r}")
    return 2 ** len(weights)


def count(sd: Mapping[str, torch.Tensor], prefix: str, at: int = 0) -> int:
    """How many consecutive integer children ``prefix.N.`` the checkpoint holds."""
    depth = prefix.count(".")
    found = {int(k.split(".")[depth + at]) for k in sd if k.startswith(prefix)
             and k.split(".")[depth + at].isdigit()}
    n = 0
    while n in found:
        n += 1
    return n
