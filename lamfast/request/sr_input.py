"""An image file made into an SR model's input: :func:`prepare_input`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from lamfast.errors import LamfastError

# The scale is read off the model's output on this corner of the image (LR pixels).
SCALE_PROBE = 48


@dataclass
class SRInput:
    """One image prepared for an SR model.

    Attributes:
        name: the file's name, for messages.
        hr: the HR image (PIL RGB) the LR input was made from, cropped to a
            multiple of the scale; for an LR input, its bicubic upscale.
        lr: the LR input (PIL RGB).
        scale: the model's SR factor.
        notes: what was converted, cropped or assumed, one line each.
    """

    name: str
    hr: Image.Image
    lr: Image.Image
    scale: int
    notes: list[str] = field(default_factory=list)

    def tensor(self) -> torch.Tensor:
        """The LR input as float32 [3,h,w] in [0,1]."""
        from lamfast.imageio import to_tensor

        return to_tensor(self.lr)


def find_scale(model: nn.Module, image: Image.Image, name: str, device=None) -> int:
    """The model's SR factor, by the one rule: one forward of the image's top-left corner.

    The corner is :data:`SCALE_PROBE` pixels square (all of the image when
    smaller), taken from the image as read, HR or LR. An SR model's factor
    does not depend on which image it sees, so a caller may find it once
    per model and pass it on; errors name the image they were found on.
    """
    from lamfast.imageio import corner, to_tensor
    from lamfast.lam import LAMError, infer_scale

    try:
        return infer_scale(model, device, sample=to_tensor(corner(image, SCALE_PROBE)))
    except LAMError as exc:
        raise LamfastError(f"{name} (its top-left {SCALE_PROBE}x{SCALE_PROBE} corner, to find the scale): {exc}",
                           param=exc.param) from None


def prepare_input(model: nn.Module | None, path: str | Path, lr_input: bool = False, *, device=None,
                  scale: int | None = None) -> SRInput:
    """Read an image file and make the model's input from it.

    The scale: ``scale`` when given (then ``model`` may be None), else
    :func:`find_scale` on the image. An HR image is cropped to a multiple of
    the scale and made LR with PIL bicubic (the official LAM
    preprocessing); an LR input (``lr_input``) is used as it is, with its
    bicubic upscale as the HR image.

    Raises:
        LamfastError: the file is not a usable image (``param="image"``), or
            the model fails on it or is not an SR model (``param="model"``).
    """
    from lamfast.imageio import ImageError, prepare_images, read_rgb

    name = Path(path).name
    try:
        image, notes = read_rgb(path)
    except ImageError as exc:
        raise LamfastError(str(exc), param="image") from None
    if scale is None:
        if model is None:
            raise LamfastError("prepare_input needs the model or its scale", param="scale")
        scale = find_scale(model, image, name, device)
    if lr_input:
        hr = image.resize((image.width * scale, image.height * scale), Image.BICUBIC)
        return SRInput(name, hr, image, scale, notes)
    try:
        hr, lr = prepare_images(image, scale)
    except ImageError as exc:
        raise LamfastError(f"{name}: {exc}", param="image") from None
    if hr.size != image.size:
        notes.append(f"cropped the HR image from {image.height}x{image.width} to {hr.height}x{hr.width} "
                     f"(HxW, a multiple of the scale {scale})")
    return SRInput(name, hr, lr, scale, notes)
