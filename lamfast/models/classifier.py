"""Classifiers: the bundled shapes CNN (``scripts/train_tiny_classifier.py``) and timm models.

:func:`load_classifier` is what the classifier commands use; it is a library
function, so its errors name no command-line flag. The shapes CNN is not an
SR architecture and is not in the SR registry.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lamfast.errors import LamfastError, first_line
from lamfast.optional import import_optional

BUNDLED_CLASSIFIER = "shapes_cnn.pt"


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


def load_classifier(spec: str, checkpoint: str | None = None, device: Any = "cpu",
                    notes: list[str] | None = None) -> tuple[nn.Module, tuple[int, int], Any, Any]:
    """A classifier in eval mode on ``device``, with its input size and normalisation.

    Args:
        spec: ``"bundled"`` (the shapes CNN) or ``"timm:NAME"`` (random init unless ``checkpoint``).
        checkpoint: weights for a timm model, loaded weights-only (nested dicts and prefixes undone).
        device: where to put it.
        notes: a list that receives one line per thing worth telling the user.
    Returns:
        (model, (H, W) input size, mean or None, std or None).
    Raises:
        ValueError (one line): an unknown spec, timm missing, an unknown timm model, a checkpoint that does not fit.
    """
    from lamfast.models import data_path
    from lamfast.models.checkpoint import fit_state_dict, read_checkpoint

    notes = notes if notes is not None else []
    if spec == "bundled":
        model = ShapesCNN()
        sd = torch.load(str(data_path(BUNDLED_CLASSIFIER)), map_location="cpu", weights_only=True)
        fit_state_dict(model, sd, "shapes-cnn")
        return model.to(device).eval(), (64, 64), None, None
    if spec.startswith("timm:"):
        timm = import_optional("timm", spec)
        try:
            model = timm.create_model(spec[5:], pretrained=False)
        except Exception as exc:  # noqa: BLE001 - timm's own error, in one line
            raise LamfastError(f"{spec}: {first_line(exc)}", param="model") from None
        if checkpoint:
            sd, more = read_checkpoint(checkpoint)
            notes += more
            fit_state_dict(model, sd, spec)
        else:
            notes.append(f"{spec} has random weights (give a checkpoint for trained ones)")
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        size = tuple(cfg.get("input_size", (3, 224, 224))[1:])
        return model.to(device).eval(), size, cfg.get("mean"), cfg.get("std")
    raise LamfastError(f"a classifier is 'bundled' or 'timm:NAME', got {spec!r}", param="model")
