"""EDSR (Lim et al., 2017) with the official EDSR-PyTorch state_dict layout.

spandrel does not cover EDSR, so lamfast ships it. Checkpoints from the
official repository (``sub_mean``, ``head.0``, ``body.N.body.0``,
``tail.0.K``, ``add_mean``) load as they are.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from lamfast.models.registry import register_model

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


class MeanShift(nn.Conv2d):
    """1x1 conv that subtracts (sign=-1) or adds (sign=+1) the RGB mean × rgb_range."""

    def __init__(self, rgb_range: float, sign: int = -1, mean=DIV2K_MEAN, std=(1.0, 1.0, 1.0)):
        super().__init__(3, 3, kernel_size=1)
        std_t = torch.tensor(std)
        self.weight.data = torch.eye(3).view(3, 3, 1, 1) / std_t.view(3, 1, 1, 1)
        self.bias.data = sign * rgb_range * torch.tensor(mean) / std_t
        for p in self.parameters():
            p.requires_grad = False


class ResBlock(nn.Module):
    def __init__(self, n_feats: int, res_scale: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feats, n_feats, 3, padding=1), nn.ReLU(True), nn.Conv2d(n_feats, n_feats, 3, padding=1)
        )
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.body(x).mul(self.res_scale)


class Upsampler(nn.Sequential):
    def __init__(self, scale: int, n_feats: int):
        layers: list[nn.Module] = []
        if scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(n_feats, 4 * n_feats, 3, padding=1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [nn.Conv2d(n_feats, 9 * n_feats, 3, padding=1), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"EDSR: scale must be a power of 2 or 3, got {scale}")
        super().__init__(*layers)


@register_model("edsr", "EDSR (official EDSR-PyTorch layout), sized from the checkpoint")
class EDSR(nn.Module):
    """EDSR: mean shift, conv head, residual blocks, upsampler, conv tail.

    Works on inputs in ``[0, rgb_range]`` (255 for official checkpoints;
    load those with ``rgb_range=255`` so lamfast scales [0,1] inputs).

    Shapes: [B,3,H,W] -> [B,3,sH,sW].
    """

    def __init__(self, n_resblocks: int = 16, n_feats: int = 64, scale: int = 4, res_scale: float = 1.0,
                 rgb_range: float = 255.0):
        super().__init__()
        self.scale = scale
        self.input_range = rgb_range  # lamfast's loader scales [0,1] inputs to this
        self.sub_mean = MeanShift(rgb_range, -1)
        self.head = nn.Sequential(nn.Conv2d(3, n_feats, 3, padding=1))
        self.body = nn.Sequential(
            *[ResBlock(n_feats, res_scale) for _ in range(n_resblocks)], nn.Conv2d(n_feats, n_feats, 3, padding=1)
        )
        self.tail = nn.Sequential(Upsampler(scale, n_feats), nn.Conv2d(n_feats, 3, 3, padding=1))
        self.add_mean = MeanShift(rgb_range, 1)

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> "EDSR":
        n_feats = sd["head.0.weight"].shape[0]
        blocks = {int(k.split(".")[1]) for k in sd if k.startswith("body.") and ".body." in k}
        ups = [k for k in sd if k.startswith("tail.0.") and k.endswith(".weight")]
        if len(ups) == 1 and sd[ups[0]].shape[0] == 9 * n_feats:
            scale = 3
        else:
            scale = 2 ** len(ups)
        bias = sd.get("sub_mean.bias")
        rgb_range = float(round(abs(float(bias[0])) / DIV2K_MEAN[0])) if bias is not None else 255.0
        # res_scale is not stored; the official large model (256 feats) uses 0.1.
        res_scale = 0.1 if n_feats >= 256 else 1.0
        return cls(n_resblocks=len(blocks), n_feats=n_feats, scale=scale, res_scale=res_scale,
                   rgb_range=rgb_range or 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x))
        x = x + self.body(x)
        return self.add_mean(self.tail(x))
