"""CARN (Ahn et al., 2018), as LAM_Demo's zoo builds it (``CARNet``, ``CARN_7400.pth``).

Cascading residual blocks with 1x1 fusion convs, 64 channels; inputs in
[0, 1] with the DIV2K mean shifted out and back. Key names: ``entry``,
``b{1,2,3}.b{1,2,3}.body.{0,2}``, ``b{i}.c{1,2,3}.body.0``, ``c{1,2,3}.body.0``,
``upsample.up.body.*`` (conv, ReLU, PixelShuffle per factor 2), ``exit``,
``sub_mean.shifter``, ``add_mean.shifter``.

Shapes: [B,3,H,W] in [0,1] -> [B,3,sH,sW].
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from lamfast.models.registry import register_model
from lamfast.models.zoo_blocks import DIV2K_MEAN, Upsampler, upsampler_scale


class _Shift(nn.Module):
    """CARN's mean shift: a frozen 1x1 conv under ``shifter``."""

    def __init__(self, sign: int):
        super().__init__()
        self.shifter = nn.Conv2d(3, 3, 1)
        self.shifter.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.shifter.bias.data = sign * torch.tensor(DIV2K_MEAN)
        for p in self.shifter.parameters():
            p.requires_grad = False

    def forward(self, x):
        return self.shifter(x)


class _Conv1Relu(nn.Module):
    """``body.0``: a conv (1x1 in the fusion layers) then ReLU."""

    def __init__(self, cin: int, cout: int, k: int = 1):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, k, 1, k // 2), nn.ReLU(True))

    def forward(self, x):
        return self.body(x)


class _Residual(nn.Module):
    """conv, ReLU, conv; ReLU of the sum with the input."""

    def __init__(self, n: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n, n, 3, 1, 1), nn.ReLU(True), nn.Conv2d(n, n, 3, 1, 1))

    def forward(self, x):
        return F.relu(self.body(x) + x)


class _Cascade(nn.Module):
    """Three units and three fusions: unit k's output is concatenated onto
    everything before it and fused back to ``n`` channels."""

    def __init__(self, make_unit, n: int):
        super().__init__()
        self.b1, self.b2, self.b3 = make_unit(), make_unit(), make_unit()
        self.c1, self.c2, self.c3 = _Conv1Relu(2 * n, n), _Conv1Relu(3 * n, n), _Conv1Relu(4 * n, n)

    def forward(self, x):
        c = x
        o = x
        for unit, fuse in ((self.b1, self.c1), (self.b2, self.c2), (self.b3, self.c3)):
            c = torch.cat([c, unit(o)], dim=1)
            o = fuse(c)
        return o


class _Up(nn.Module):
    def __init__(self, scale: int, n: int):
        super().__init__()
        self.up = nn.Module()
        self.up.body = Upsampler(scale, n, relu=True)

    def forward(self, x):
        return self.up.body(x)


@register_model("carn", "CARN (LAM_Demo zoo's CARNet, CARN_7400.pth), scale read from the checkpoint",
                detect=("entry.weight", "b1.b1.body.0.weight", "b3.c3.body.0.weight", "upsample.up.body.0.weight",
                        "exit.weight", "sub_mean.shifter.bias"))
class CARN(nn.Module):
    """LAM_Demo zoo's CARN (CARNet, ``CARN_7400.pth``): cascading residual blocks, x2/3/4. [B,3,H,W] in [0,1] -> [B,3,sH,sW].

    Example:
        >>> import torch
        >>> from lamfast.models import CARN
        >>> CARN(scale=2, n_feats=8)(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 16, 16])
    """
    def __init__(self, scale: int = 4, n_feats: int = 64):
        super().__init__()
        self.scale = scale
        self.in_channels = self.out_channels = 3  # what lamfast's descriptor reads
        self.sub_mean = _Shift(-1)
        self.add_mean = _Shift(+1)
        self.entry = nn.Conv2d(3, n_feats, 3, 1, 1)
        self.b1, self.b2, self.b3 = (_Cascade(lambda: _Residual(n_feats), n_feats) for _ in range(3))
        self.c1, self.c2, self.c3 = (_Conv1Relu(k * n_feats, n_feats) for k in (2, 3, 4))
        self.upsample = _Up(scale, n_feats)
        self.exit = nn.Conv2d(n_feats, 3, 3, 1, 1)

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> "CARN":
        return cls(**cls.infer(sd)[0])

    @classmethod
    def infer(cls, sd: Mapping[str, torch.Tensor], given: Mapping | None = None) -> tuple[dict, dict]:
        """(constructor arguments read from ``sd``, notes on guesses): see ``register_model``."""
        n = sd["entry.weight"].shape[0]
        return {"scale": upsampler_scale(sd, "upsample.up.body.", n), "n_feats": n}, {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.entry(self.sub_mean(x))
        c = o = x
        for block, fuse in ((self.b1, self.c1), (self.b2, self.c2), (self.b3, self.c3)):
            c = torch.cat([c, block(o)], dim=1)
            o = fuse(c)
        return self.add_mean(self.exit(self.upsample(o)))
