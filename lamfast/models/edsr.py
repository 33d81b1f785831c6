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

from lamfast.models.registry import ArchitectureGuessError, register_model

from lamfast.errors import LamfastError

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
            raise LamfastError(f"EDSR: scale must be a power of 2 or 3, got {scale}")
        super().__init__(*layers)


@register_model("edsr", "EDSR (official EDSR-PyTorch layout), sized from the checkpoint",
                detect=("head.0.weight", "body.0.body.0.weight", "tail.1.weight"))
class EDSR(nn.Module):
    """EDSR: mean shift, conv head, residual blocks, upsampler, conv tail.

    Works on inputs in ``[0, rgb_range]`` (255 for official checkpoints;
    load those with ``rgb_range=255`` so lamfast scales [0,1] inputs).

    Shapes: [B,3,H,W] -> [B,3,sH,sW].

    Example:
        >>> import torch
        >>> from lamfast.models import EDSR
        >>> EDSR(n_resblocks=1, n_feats=8, scale=2, rgb_range=1.0)(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 16, 16])
    """

    def __init__(self, n_resblocks: int = 16, n_feats: int = 64, scale: int = 4, res_scale: float = 1.0,
                 rgb_range: float = 255.0):
        super().__init__()
        self.scale = scale
        self.in_channels = self.out_channels = 3  # what lamfast's descriptor reads
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
        return cls(**cls.infer(sd)[0])

    @classmethod
    def infer(cls, sd: Mapping[str, torch.Tensor], given: Mapping | None = None) -> tuple[dict, dict]:
        """(constructor arguments read from ``sd``, notes on guesses): see ``register_model``.

        rgb_range comes from the size of the stored mean shift: 1 or 255
        (``-rgb_range * mean``, whatever the mean). A shift that fits neither
        is refused. res_scale is not stored: 0.1 is assumed only for the
        layout of EDSR-PyTorch's large model (256+ channels, 0-255 inputs),
        1.0 otherwise (LAM_Demo's EDSR class uses 1.0 at every width).
        """
        n_feats = sd["head.0.weight"].shape[0]
        blocks = {int(k.split(".")[1]) for k in sd if k.startswith("body.") and ".body." in k}
        ups = [k for k in sd if k.startswith("tail.0.") and k.endswith(".weight")]
        scale = 3 if len(ups) == 1 and sd[ups[0]].shape[0] == 9 * n_feats else 2 ** len(ups)
        why: dict[str, str] = {}
        bias = sd.get("sub_mean.bias")
        if given and "rgb_range" in given:
            rgb_range = float(given["rgb_range"])
        elif bias is None:
            rgb_range = 255.0
            why["rgb_range"] = "no mean shift stored: rgb_range 255 assumed (EDSR-PyTorch's)"
        else:
            size = bias.detach().abs().double().cpu()
            if bool((size <= 1.0).all()):
                rgb_range = 1.0
            elif bool(((size >= 25.0) & (size <= 255.0)).all()):
                rgb_range = 255.0
            else:
                raise ArchitectureGuessError(
                    f"edsr: the stored mean shift {[round(float(v), 4) for v in bias]} fits neither rgb_range 1 "
                    "nor 255 (it is -rgb_range x mean); give rgb_range in the architecture keyword arguments")
        if bias is not None and not (given and "rgb_range" in given):
            mean = bias.detach().abs().double().cpu() / rgb_range
            if float((mean - torch.tensor(DIV2K_MEAN, dtype=torch.float64)).abs().max()) > 0.01:
                why["rgb_range"] = (f"rgb_range {rgb_range:g} from the size of the stored mean shift; its mean "
                                    f"({', '.join(f'{float(v):.4f}' for v in mean)}) is the checkpoint's own, not DIV2K's")
        if n_feats >= 256 and rgb_range == 255.0:
            res_scale = 0.1
            why["res_scale"] = ("res_scale 0.1 assumed (EDSR-PyTorch's large model: 256+ channels, 0-255 inputs); "
                                "the weights cannot tell: for LAM_Demo's EDSR class give res_scale 1.0")
        else:
            res_scale = 1.0
            why["res_scale"] = ("res_scale 1.0 assumed (LAM_Demo's EDSR, EDSR-PyTorch's baseline); the weights cannot "
                                "tell: for EDSR-PyTorch's large model give res_scale 0.1")
        return {"n_resblocks": len(blocks), "n_feats": n_feats, "scale": scale, "res_scale": res_scale,
                "rgb_range": rgb_range}, why

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x))
        x = x + self.body(x)
        return self.add_mean(self.tail(x))
