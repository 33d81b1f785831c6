"""Small models the tests share (importable by the tests and by architecture files the tests write)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SlidingVSR(nn.Module):
    """All-frame output, x2: each output frame from its own frame and its neighbours' (a temporal
    3-tap mix after a per-frame conv), local in space."""

    def __init__(self, channels: int = 3):
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(channels, 8, 3, padding=1)
        self.mix = nn.Parameter(torch.tensor([0.25, 0.5, 0.25]))
        self.up = nn.Conv2d(8, channels * 4, 3, padding=1)

    def forward(self, x):
        B, T = x.shape[:2]
        f = torch.tanh(self.conv(x.flatten(0, 1))).unflatten(0, (B, T))
        padded = torch.cat([f[:, :1], f, f[:, -1:]], dim=1)
        mixed = sum(self.mix[k] * padded[:, k:k + T] for k in range(3))
        return F.pixel_shuffle(self.up(mixed.flatten(0, 1)), 2).unflatten(0, (B, T))


class CentreVSR(SlidingVSR):
    """One output frame: the middle one of ``SlidingVSR``'s."""

    def forward(self, x):
        return super().forward(x)[:, x.shape[1] // 2]


class RecurrentVSR(nn.Module):
    """A hidden state carried frame to frame with global pooling: nothing is local in space."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.conv = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x):
        outs, state = [], 0.0
        for t in range(x.shape[1]):
            y = torch.tanh(self.conv(x[:, t]))
            state = 0.5 * state + y.mean(dim=(2, 3), keepdim=True)
            outs.append(F.pixel_shuffle(y + state, 2))
        return torch.stack(outs, dim=1)
