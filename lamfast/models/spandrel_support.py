"""Architecture detection for common SR checkpoints through spandrel (optional).

spandrel (RCAN, SwinIR, HAT, ESRGAN/RRDBNet, SAFMN, SPAN, DAT, OmniSR, ...)
is imported only when a checkpoint needs detection, never at
``import lamfast``.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn


class DetectionError(ValueError):
    """No architecture could be detected for a checkpoint (one-line message)."""


def detect_with_spandrel(sd: Mapping[str, torch.Tensor]) -> tuple[nn.Module, str]:
    """Build and load the spandrel model that fits ``sd``: (module, architecture name)."""
    try:
        from spandrel import ModelLoader
    except Exception as exc:  # ImportError, or torchvision failing inside spandrel's imports
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DetectionError(
            f"automatic architecture detection needs the spandrel package, which is unavailable ({first}); "
            "install it (pip install spandrel) or name the architecture with --arch"
        ) from None
    try:
        descriptor = ModelLoader().load_from_state_dict(dict(sd))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DetectionError(f"spandrel does not recognise this checkpoint ({first}); name the architecture with --arch") from None
    return descriptor.model, f"spandrel:{descriptor.architecture.name}"
