"""The bundled shapes classifier (``scripts/train_tiny_classifier.py``)."""
from __future__ import annotations

import torch
from torch import nn

from lamfast.models.registry import register_model


@register_model("shapes-cnn", "small CNN for the procedural shapes data (lamfast.shapes)")
class ShapesCNN(nn.Module):
    """Four conv-BN-ReLU stages and a linear head: [B,3,64,64] -> [B,4] logits.

    ``features[-1]`` (the last ReLU, 16x16) is the natural CAM target layer.
    """

    def __init__(self, classes: int = 4, width: int = 32):
        super().__init__()
        def stage(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *stage(3, width, 1), *stage(width, width, 2), *stage(width, 2 * width, 1), *stage(2 * width, 2 * width, 2)
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
