"""Classifiers: the bundled shapes CNN (``scripts/train_tiny_classifier.py``) and timm models.

:func:`load_classifier` is what the classifier commands use; it is a library
function, so its errors name no command-line flag. The shapes CNN is not an
SR architecture and is not in the SR registry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lamfast.errors import LamfastError, first_line
from lamfast.optional import import_optional



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


@dataclass
class Classifier:
    """A classifier ready for the CAM and attribution methods, and what it expects.

    Attributes:
        model: [B,3,H,W] -> [B,classes] logits, in eval mode on the device asked for.
        size: (H, W) the input size it expects.
        mean, std: the normalisation of its inputs (None: none).
        name: the spec it was loaded from.
        notes: every guess the loader made, one line each.
    """

    model: nn.Module
    size: tuple[int, int]
    mean: Any = None
    std: Any = None
    name: str = "bundled"
    notes: list[str] = field(default_factory=list)


def parse_classifier(spec: str, checkpoint: str | None = None) -> tuple[str, str | None]:
    """``bundled`` or ``timm:NAME[:CHECKPOINT]`` (``NAME=`` in front is a label) as (model, checkpoint);
    ``checkpoint`` given apart joins it."""
    spec = str(spec).partition("=")[2] if "=" in str(spec) and not str(spec).startswith("timm:") else str(spec)
    if spec.startswith("timm:") and spec.count(":") >= 2:
        name, _, path = spec[5:].partition(":")
        if checkpoint is not None and checkpoint != path:
            raise LamfastError(f"{spec!r} names a checkpoint, and {checkpoint!r} was given too", param="model")
        return f"timm:{name}", path
    return spec, checkpoint


def load_classifier(spec: str = "bundled", checkpoint: str | None = None, *, model_kwargs: dict | None = None,
                    device: Any = "cpu") -> Classifier:
    """A classifier in eval mode on ``device``, with its input size and normalisation.

    Args:
        spec: ``"bundled"`` (the shapes CNN) or ``"timm:NAME[:CHECKPOINT]"`` (random init without a checkpoint).
        checkpoint: weights for a timm model, named apart, loaded weights-only (nested dicts and
            prefixes undone). A backbone checkpoint (no ``head.`` weights, e.g. DINO's) gets no head.
        model_kwargs: keyword arguments for ``timm.create_model`` (e.g. ``{"img_size": 224}``).
        device: where to put it.
    Returns:
        Classifier.
    Raises:
        LamfastError (one line): an unknown spec, timm missing, an unknown timm model, a checkpoint
        that does not fit.

    Example:
        >>> from lamfast.models.classifier import load_classifier
        >>> c = load_classifier("bundled")
        >>> c.size, type(c.model).__name__
        ((64, 64), 'ShapesCNN')
    """
    from lamfast.bundled import bundled_file, is_bundled
    from lamfast.models.checkpoint import fit_state_dict, read_checkpoint

    spec, checkpoint = parse_classifier(spec, checkpoint)
    kwargs = dict(model_kwargs or {})
    if is_bundled(spec):
        if kwargs or checkpoint:
            raise LamfastError("the bundled classifier takes no checkpoint or model keyword arguments", param="model")
        model = ShapesCNN()
        fit_state_dict(model, torch.load(str(bundled_file("classifier")), map_location="cpu", weights_only=True),
                       "shapes-cnn")
        return Classifier(model.to(device).eval(), (64, 64), name="bundled")
    if not spec.startswith("timm:"):
        raise LamfastError(f"a classifier is 'bundled' or 'timm:NAME[:CHECKPOINT]', got {spec!r}", param="model")
    timm = import_optional("timm", spec)
    notes: list[str] = []
    sd = None
    if checkpoint:
        sd, notes = read_checkpoint(checkpoint)
        if "num_classes" not in kwargs and not any(k.startswith("head.") for k in sd):
            kwargs["num_classes"] = 0
            notes.append(f"{checkpoint} has no head weights: loaded as a backbone without a classifier head "
                         "(give num_classes in the model keyword arguments to override)")
    try:
        model = timm.create_model(spec[5:], pretrained=False, **kwargs)
    except Exception as exc:  # noqa: BLE001 - timm's own error, in one line
        raise LamfastError(f"{spec}: {first_line(exc)}", param="model") from None
    if sd is not None:
        fit_state_dict(model, sd, spec)
    else:
        notes.append(f"{spec} has random weights (give a checkpoint for trained ones)")
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    size = (kwargs["img_size"],) * 2 if isinstance(kwargs.get("img_size"), int) else \
        tuple(cfg.get("input_size", (3, 224, 224))[1:])
    return Classifier(model.to(device).eval(), size, cfg.get("mean"), cfg.get("std"),
                      f"{spec}:{checkpoint}" if checkpoint else spec, notes)
