"""RNAN (Zhang et al., 2019), as LAM_Demo's zoo builds it (``RNAN``, ``RNAN_SR_F64G10P48BIX4.pt``).

Residual non-local attention network: 10 groups (a non-local group first and
last, 8 local ones between them), each a residual attention module (trunk
branch times a sigmoid mask from a down-up branch) and a conv. Inputs are
scaled by 255 inside, as in the zoo.

The zoo's details, kept here because the numbers depend on them:
- A group returns its body's output with no skip; the network adds the
  head's features once, after the last group.
- The non-local block of the mask branch normalises its attention with a
  softmax over axis 1 (over the query positions), not the last axis.
- The mask branch halves the map with a stride-2 conv and restores it with
  a 6x6 stride-2 transposed conv, so odd feature sizes do not fit (the zoo
  fails on them too).

Shapes: [B,3,H,W] in [0,1] -> [B,3,sH,sW], H and W even.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from lamfast.models.registry import register_model
from lamfast.models.zoo_blocks import MeanShift, ResBlock, Upsampler, conv3, count, upsampler_scale


class NonLocal(nn.Module):
    """Embedded-Gaussian non-local block (``g``, ``theta``, ``phi``, ``W``), softmax over axis 1."""

    def __init__(self, n_feats: int, inter: int):
        super().__init__()
        self.inter = inter
        self.g = nn.Conv2d(n_feats, inter, 1)
        self.W = nn.Conv2d(inter, n_feats, 1)
        self.theta = nn.Conv2d(n_feats, inter, 1)
        self.phi = nn.Conv2d(n_feats, inter, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        g = self.g(x).reshape(B, self.inter, -1).permute(0, 2, 1)
        theta = self.theta(x).reshape(B, self.inter, -1).permute(0, 2, 1)
        phi = self.phi(x).reshape(B, self.inter, -1)
        y = F.softmax(theta.matmul(phi), dim=1).matmul(g)
        return self.W(y.permute(0, 2, 1).reshape(B, self.inter, *x.shape[2:])) + x


class _Trunk(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.body = nn.Sequential(ResBlock(n), ResBlock(n))

    def forward(self, x):
        return self.body(x)


class _Mask(nn.Module):
    """Down-up mask branch: a sigmoid map the trunk is multiplied by."""

    def __init__(self, n: int, non_local: bool):
        super().__init__()
        self.MB_RB1 = nn.Sequential(*([NonLocal(n, n // 2)] if non_local else []), ResBlock(n))
        self.MB_Down = nn.Sequential(nn.Conv2d(n, n, 3, stride=2, padding=1))
        self.MB_RB2 = nn.Sequential(ResBlock(n), ResBlock(n))
        self.MB_Up = nn.Sequential(nn.ConvTranspose2d(n, n, 6, stride=2, padding=2))
        self.MB_RB3 = nn.Sequential(ResBlock(n))
        self.MB_1x1conv = nn.Sequential(nn.Conv2d(n, n, 1))
        self.MB_sigmoid = nn.Sequential(nn.Sigmoid())

    def forward(self, x):
        rb1 = self.MB_RB1(x)
        up = self.MB_Up(self.MB_RB2(self.MB_Down(rb1)))
        return self.MB_sigmoid(self.MB_1x1conv(self.MB_RB3(rb1 + up)))


class _AttentionModule(nn.Module):
    def __init__(self, n: int, non_local: bool):
        super().__init__()
        self.RA_RB1 = nn.Sequential(ResBlock(n))
        self.RA_TB = nn.Sequential(_Trunk(n))
        self.RA_MB = nn.Sequential(_Mask(n, non_local))
        self.RA_tail = nn.Sequential(ResBlock(n), ResBlock(n))

    def forward(self, x):
        rb1 = self.RA_RB1(x)
        return self.RA_tail(self.RA_TB(rb1) * self.RA_MB(rb1) + rb1)


class _Group(nn.Module):
    def __init__(self, n: int, non_local: bool):
        super().__init__()
        self.body = nn.Sequential(_AttentionModule(n, non_local), conv3(n, n))

    def forward(self, x):
        return self.body(x)


@register_model("rnan", "RNAN (LAM_Demo zoo's RNAN, RNAN_SR_F64G10P48BIX4.pt), sized from the checkpoint",
                detect=("body_nl_low.0.body.0.RA_MB.0.MB_RB1.0.g.weight", "body.0.body.0.RA_TB.0.body.0.body.0.weight",
                        "head.0.weight", "tail.1.weight"))
class RNAN(nn.Module):
    """LAM_Demo zoo's RNAN: residual non-local attention groups; inputs scaled by 255 inside. [B,3,H,W] in [0,1] -> [B,3,sH,sW].

    Example:
        >>> import torch
        >>> from lamfast.models import RNAN
        >>> RNAN(scale=2, n_feats=8, n_resgroups=3)(torch.rand(1, 3, 16, 16)).shape
        torch.Size([1, 3, 32, 32])
    """
    def __init__(self, scale: int = 4, n_feats: int = 64, n_resgroups: int = 10):
        super().__init__()
        self.scale = scale
        self.in_channels = self.out_channels = 3  # what lamfast's descriptor reads
        self.sub_mean = MeanShift(1.0, -1)
        self.head = nn.Sequential(conv3(3, n_feats))
        self.body_nl_low = nn.Sequential(_Group(n_feats, True))
        self.body = nn.Sequential(*[_Group(n_feats, False) for _ in range(n_resgroups - 2)], conv3(n_feats, n_feats))
        self.body_nl_high = nn.Sequential(_Group(n_feats, True))
        self.tail = nn.Sequential(Upsampler(scale, n_feats), conv3(n_feats, 3))
        self.add_mean = MeanShift(1.0, +1)

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> "RNAN":
        return cls(**cls.infer(sd)[0])

    @classmethod
    def infer(cls, sd: Mapping[str, torch.Tensor], given: Mapping | None = None) -> tuple[dict, dict]:
        """(constructor arguments read from ``sd``, notes on guesses): see ``register_model``."""
        n = sd["head.0.weight"].shape[0]
        return {"scale": upsampler_scale(sd, "tail.0.", n), "n_feats": n, "n_resgroups": count(sd, "body.") + 1}, {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.head(self.sub_mean(x * 255.0))
        res = self.body_nl_high(self.body(self.body_nl_low(feats))) + feats
        return self.add_mean(self.tail(res)) / 255.0
