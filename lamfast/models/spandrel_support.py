"""Architecture detection for common SR checkpoints through spandrel (optional).

spandrel (RCAN, SwinIR, HAT, ESRGAN/RRDBNet, SAFMN, SPAN, DAT, OmniSR, ...)
is imported only when a checkpoint needs detection, never at
``import lamfast``. Its own descriptor says the scale, the channels and the
size requirements; lamfast keeps them (:class:`lamfast.ModelDescriptor`).
"""
from __future__ import annotations

from typing import Mapping

import torch

from lamfast.descriptor import ModelDescriptor, SizeRequirements
from lamfast.errors import LamfastError, first_line
from lamfast.optional import MissingDependency, import_optional


class DetectionError(LamfastError):
    """No architecture could be detected for a checkpoint (one-line message)."""


def class_spec(architecture_id: str, cls: type) -> str | None:
    """``spandrel.architectures.<Id>:<Name>``, the name under which spandrel's architecture module exports
    ``cls`` (spandrel exports ``RRDBNet`` as ``ESRGAN``, ``SRVGGNetCompact`` as ``Compact``); None if it
    does not export it."""
    module = import_optional(f"spandrel.architectures.{architecture_id}", "naming a spandrel class")
    names = [n for n in getattr(module, "__all__", dir(module)) if getattr(module, n, None) is cls]
    return f"spandrel.architectures.{architecture_id}:{names[0]}" if names else None


def detect_with_spandrel(sd: Mapping[str, torch.Tensor]) -> ModelDescriptor:
    """The spandrel model that fits ``sd``, described as spandrel describes it, with notes on what it read."""
    try:
        spandrel = import_optional("spandrel", "automatic architecture detection")
    except MissingDependency as exc:
        raise DetectionError(f"{exc}; or name the architecture", param="arch") from None
    try:
        found = spandrel.ModelLoader().load_from_state_dict(dict(sd))
    except Exception as exc:  # noqa: BLE001 - spandrel's own error, in one line
        raise DetectionError(f"spandrel does not recognise this checkpoint ({first_line(exc)}); name the architecture",
                             param="arch") from None
    name = f"spandrel:{found.architecture.name}"
    req = getattr(found, "size_requirements", None)
    size = SizeRequirements(int(getattr(req, "minimum", 0)), int(getattr(req, "multiple_of", 1)),
                            bool(getattr(req, "square", False)))
    notes = [f"detected architecture {name!r} with spandrel: scale x{found.scale}, {found.input_channels} input and "
             f"{found.output_channels} output channels read from the checkpoint"]
    if not size.none:
        notes.append(f"{name} takes input sides of at least {size.minimum} px"
                     + (f", multiples of {size.multiple_of}" if size.multiple_of > 1 else "")
                     + (", square" if size.square else "")
                     + " (spandrel's size requirements): inputs are padded to them as spandrel pads, and crops aligned")
    spec = class_spec(found.architecture.id, type(found.model))
    notes.append(f"{name}: settings the weights cannot tell are spandrel's defaults"
                 + (f"; to set them yourself, name the class, e.g. {spec}:CHECKPOINT with model keyword arguments"
                    if spec else ""))
    return ModelDescriptor(found.model, int(found.scale), int(found.input_channels), int(found.output_channels), size,
                           name, notes=notes)
