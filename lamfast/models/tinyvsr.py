"""TinyVSR: the small video SR network lamfast ships for the video LAM demo."""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from lamfast.errors import LamfastError
from lamfast.models.registry import register_model


@register_model("tinyvsr", "small sliding-window video SR net: per-frame conv, early fusion of the frames, "
                           "pixel-shuffle tail over bicubic of the centre frame",
                detect=("feat.weight", "fuse.weight", "tail.weight"))
class TinyVSR(nn.Module):
    """A centre-frame video SR model with early fusion.

    Each of the ``frames`` input frames gets the same conv (``feat``). The
    features of all frames are stacked and fused by one conv, then ``depth``
    ReLU convs and a pixel-shuffle tail predict the residual over bicubic
    upsampling of the centre frame. There is no flow and no recurrence: it
    is local in space, so LAM runs on crops.

    Shapes: [B,T,C,H,W] in [0,1] (T = ``frames``) -> [B,C,sH,sW], the
    centre frame ``T // 2``.

    Example:
        >>> import torch
        >>> from lamfast.models import TinyVSR
        >>> TinyVSR()(torch.rand(1, 5, 3, 8, 8)).shape  # five frames in, the centre one out
        torch.Size([1, 3, 16, 16])
    """

    def __init__(self, frames: int = 5, channels: int = 3, scale: int = 2, feat: int = 6, width: int = 12,
                 depth: int = 1):
        super().__init__()
        self.frames, self.channels, self.scale = frames, channels, scale
        self.in_channels = self.out_channels = channels  # per frame, what lamfast's descriptor reads
        self.feat = nn.Conv2d(channels, feat, 3, padding=1)
        self.fuse = nn.Conv2d(frames * feat, width, 3, padding=1)
        self.body = nn.ModuleList([nn.Conv2d(width, width, 3, padding=1) for _ in range(depth)])
        self.tail = nn.Conv2d(width, channels * scale * scale, 3, padding=1)

    @classmethod
    def infer(cls, sd: Mapping[str, torch.Tensor], given: Mapping | None = None) -> tuple[dict, dict]:
        """(constructor arguments read from ``sd``, notes on guesses): see ``register_model``."""
        feat, channels = sd["feat.weight"].shape[:2]
        width, fused = sd["fuse.weight"].shape[:2]
        if fused % feat:
            raise LamfastError(f"fuse takes {fused} channels, not a multiple of {feat} features per frame")
        depth = len({k.split(".")[1] for k in sd if k.startswith("body.")})
        scale = int(round((sd["tail.weight"].shape[0] / channels) ** 0.5))
        return {"frames": fused // feat, "channels": int(channels), "scale": scale, "feat": int(feat),
                "width": int(width), "depth": depth}, {}

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> "TinyVSR":
        return cls(**cls.infer(sd)[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        if T != self.frames or C != self.channels:
            raise LamfastError(f"TinyVSR takes clips of {self.frames} frames of {self.channels} channels, "
                             f"got {T} frames of {C}")
        f = F.relu(self.feat(x.reshape(B * T, C, H, W))).reshape(B, -1, H, W)
        y = F.relu(self.fuse(f))
        for conv in self.body:
            y = F.relu(conv(y))
        y = F.pixel_shuffle(self.tail(y), self.scale)
        return y + F.interpolate(x[:, T // 2], scale_factor=self.scale, mode="bicubic", align_corners=False)
