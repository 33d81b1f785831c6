"""Architecture detection for common SR checkpoints through spandrel (optional).

spandrel (RCAN, SwinIR, HAT, ESRGAN/RRDBNet, SAFMN, SPAN, DAT, OmniSR, ...)
is imported only when a checkpoint needs detection, never at
``import lamfast``.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from lamfast.errors import LamfastError, first_line
from lamfast.optional import MissingDependency, import_optional


class DetectionError(LamfastError):
    """No architecture could be detected for a checkpoint (one-line message)."""


def detect_with_spandrel(sd: Mapping[str, torch.Tensor]) -> tuple[nn.Module, str, list[str]]:
    """Build and load the spandrel model that fits ``sd``: (module, architecture name, notes on what it read)."""
    try:
        spandrel = import_optional("spandrel", "automatic architecture detection")
    except MissingDependency as exc:
        raise DetectionError(f"{exc}; or name the architecture", param="arch") from None
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(dict(sd))
    except Exception as exc:  # noqa: BLE001 - spandrel's own error, in one line
        raise DetectionError(f"spandrel does not recognise this checkpoint ({first_line(exc)}); name the architecture",
                             param="arch") from None
    name = f"spandrel:{descriptor.architecture.name}"
    notes = [f"detected architecture {name!r} with spandrel: scale x{descriptor.scale} read from the checkpoint"]
    req = getattr(descriptor, "size_requirements", None)
    multiple = getattr(req, "multiple_of", 1) or 1
    if multiple > 1:
        notes.append(f"{name} needs input sides that are multiples of {multiple} (spandrel's size requirement)")
    notes.append(f"{name}: to set its hyperparameters yourself, name the class, e.g. "
                 f"spandrel.architectures.{descriptor.architecture.id}:{type(descriptor.model).__name__}, "
                 "with architecture keyword arguments")
    return descriptor.model, name, notes
