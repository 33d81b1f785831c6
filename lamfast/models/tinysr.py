"""TinySR: the small x4 SR network lamfast ships (and the reference case's model)."""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from lamfast.models.registry import register_model


@register_model("tinysr", "small conv SR net: head, ReLU conv body, pixel-shuffle tail (optional bicubic skip)",
                detect=lambda sd: {"head.weight", "tail.weight"} <= set(sd)
                and {k.split(".")[0] for k in sd} <= {"head", "body", "tail", "bicubic_skip"})
class TinySR(nn.Module):
    """Conv head, ``depth`` ReLU convs, conv tail and pixel shuffle.

    With ``bicubic_skip`` the network predicts a residual over bicubic
    upsampling (the bundled model); without it, it is exactly the TinySR of
    the official reference case (``tests/data/lam_case1.npz``).

    Shapes: [B,3,H,W] in [0,1] -> [B,3,sH,sW].

    Example:
        >>> import torch
        >>> from lamfast.models import TinySR
        >>> TinySR(scale=2)(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 16, 16])
    """

    def __init__(self, scale: int = 4, width: int = 16, depth: int = 3, bicubic_skip: bool = False):
        super().__init__()
        self.scale = scale
        self.in_channels = self.out_channels = 3  # what lamfast's descriptor reads
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.ModuleList([nn.Conv2d(width, width, 3, padding=1) for _ in range(depth)])
        self.tail = nn.Conv2d(width, 3 * scale * scale, 3, padding=1)
        # A buffer, so a checkpoint says which variant it was trained as.
        self.register_buffer("bicubic_skip", torch.tensor(bool(bicubic_skip)))
        # forward() reads this Python copy: reading the buffer there would be
        # a host sync per forward on a GPU. Kept in step by load_state_dict.
        self._skip = bool(bicubic_skip)

    @classmethod
    def infer(cls, sd: Mapping[str, torch.Tensor], given: Mapping | None = None) -> tuple[dict, dict]:
        """(constructor arguments read from ``sd``, notes on guesses): see ``register_model``."""
        width = sd["head.weight"].shape[0]
        depth = len({k.split(".")[1] for k in sd if k.startswith("body.")})
        scale = int(round((sd["tail.weight"].shape[0] / 3) ** 0.5))
        skip = bool(sd["bicubic_skip"]) if "bicubic_skip" in sd else False
        return {"scale": scale, "width": width, "depth": depth, "bicubic_skip": skip}, {}

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> "TinySR":
        return cls(**cls.infer(sd)[0])

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        # The reference checkpoint predates the buffer: default it to "no skip".
        if "bicubic_skip" not in state_dict:
            state_dict = {**state_dict, "bicubic_skip": torch.tensor(False)}
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._skip = bool(self.bicubic_skip)
        return result

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.head(x))
        for conv in self.body:
            y = F.relu(conv(y))
        y = F.pixel_shuffle(self.tail(y), self.scale)
        if self._skip:
            y = y + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return y
