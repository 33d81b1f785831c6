"""An image file made into an SR model's input: :func:`prepare_input`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from lamfast.bundled import resolve
from lamfast.descriptor import ModelDescriptor
from lamfast.errors import LamfastError

# The scale is read off the model's output on this corner of the image (LR pixels).
SCALE_PROBE = 48


@dataclass
class SRInput:
    """One image prepared for an SR model.

    Attributes:
        name: the file's name, for messages.
        hr: the HR image (PIL) the LR input was made from, cropped to a
            multiple of the scale; for an LR input, its bicubic upscale.
        lr: the LR input (PIL: RGB; for gray models "L", or "F" for 16-bit
            files; for ``color="y"`` the RGB image whose Y the model gets).
        scale: the model's SR factor.
        color: ``"rgb"``, ``"gray"`` or ``"y"``: what the model is fed.
        notes: what was converted, cropped or assumed, one line each.

    Example:
        >>> from lamfast.request import prepare_input
        >>> x = prepare_input(None, "bundled", scale=4)
        >>> x.name, x.hr.size, x.lr.size, tuple(x.tensor().shape)
        ('astronaut.png', (256, 256), (64, 64), (3, 64, 64))
    """

    name: str
    hr: Image.Image
    lr: Image.Image
    scale: int
    notes: list[str] = field(default_factory=list)
    color: str = "rgb"

    def tensor(self) -> torch.Tensor:
        """The model's input: float32 [3,h,w] (rgb) or [1,h,w] (gray, y) in [0,1]."""
        from lamfast.imageio import model_input

        return model_input(self.lr, self.color)

    def hr_tensor(self) -> torch.Tensor:
        """The HR image in the model's channels (where data-dependent windows are picked)."""
        from lamfast.imageio import model_input

        return model_input(self.hr, self.color)

    def views(self, bands: tuple[int, int, int] | None = None) -> tuple[Image.Image, Image.Image]:
        """(HR, LR) as the figures draw them: RGB, or the gray band the model gets; multi-band images as
        the mean of their bands, or RGB of three ``bands`` (1-based)."""
        from lamfast.imageio import display

        return display(self.hr, self.color, bands), display(self.lr, self.color, bands)


def input_channels(model: "nn.Module | ModelDescriptor | None") -> tuple[int | None, str]:
    """The input channels ``model`` takes, and what says so: its descriptor, else the first convolution it runs."""
    from lamfast.descriptor import first_convolution

    if model is None:
        return None, ""
    if isinstance(model, ModelDescriptor) and model.in_channels is not None:
        return model.in_channels, "the model takes"
    return first_convolution(getattr(model, "model", model)), "the model's first convolution takes"


def choose_color(model: "nn.Module | ModelDescriptor | None", color: str | None) -> tuple[str, list[str]]:
    """The ``color`` to feed ``model``: as given, or from the input channels it takes (1: gray, 3 or
    unknown: rgb). Returns (color, notes).

    Example:
        >>> import torch
        >>> from lamfast.request import choose_color
        >>> choose_color(torch.nn.Conv2d(1, 4, 3), None)[0], choose_color(None, "y")[0]
        ('gray', 'y')
    """
    from lamfast.imageio import COLORS

    if color is not None:
        if color not in COLORS:
            raise LamfastError(f"color must be one of {COLORS} or None, got {color!r}", param="color")
        return color, []
    takes, who = input_channels(model)
    if takes in (None, 3):
        return "rgb", []
    if takes == 1:
        return "gray", [f"{who} 1 channel: the image is read as grayscale (color='y' feeds the Y of YCbCr "
                        "instead)"]
    return "bands", [f"{who} {takes} channels: the input is read as bands (a .npy array [C,H,W])"]


def find_scale(model: "nn.Module | ModelDescriptor", image: Image.Image, name: str, device=None,
               color: str = "rgb") -> int:
    """The model's SR factor: its descriptor's, else by the one rule, one forward of the image's top-left corner.

    The corner is :data:`SCALE_PROBE` pixels square (all of the image when
    smaller), taken from the image as read, HR or LR, in the channels the
    model gets. An SR model's factor does not depend on which image it
    sees, so a caller may find it once per model and pass it on; errors
    name the image they were found on.

    Example:
        >>> from PIL import Image
        >>> import lamfast
        >>> from lamfast.request import find_scale
        >>> find_scale(lamfast.load_model().model, Image.new("RGB", (32, 32)), "blank.png")
        4
    """
    from lamfast.imageio import corner, model_input
    from lamfast.lam import LAMError, infer_scale

    try:
        return infer_scale(model, device, sample=model_input(corner(image, SCALE_PROBE), color))
    except LAMError as exc:
        raise LamfastError(f"{name} (its top-left {SCALE_PROBE}x{SCALE_PROBE} corner, to find the scale): {exc}",
                           param=exc.param) from None


def prepare_input(model: "nn.Module | ModelDescriptor | None", path: str | Path, lr_input: bool = False, *,
                  device=None, scale: int | None = None, color: str | None = None) -> SRInput:
    """Read an image file and make the model's input from it.

    ``path`` ``"bundled"`` is the bundled astronaut photo. The scale:
    ``scale`` when given (then ``model`` may be None), else the
    descriptor's, else :func:`find_scale` on the image. An HR image is cropped to a multiple of
    the scale and made LR with PIL bicubic (the official LAM
    preprocessing); an LR input (``lr_input``) is used as it is, with its
    bicubic upscale as the HR image.

    ``color``: ``"rgb"``, ``"gray"`` (one band: 8-bit files as they are,
    16-bit ones as floats, colour files by their luma) or ``"y"`` (the Y
    of YCbCr of the RGB LR, as SR evaluation code feeds Y-channel models);
    None chooses from the model's first convolution (:func:`choose_color`).
    A ``.npy`` file is read as bands [C,H,W] (``color="bands"``, any C),
    each band made LR by PIL bicubic as an image is.

    Raises:
        LamfastError: the file is not a usable image (``param="image"``), or
            the model fails on it or is not an SR model (``param="model"``).

    Example:
        >>> import lamfast
        >>> from lamfast.request import prepare_input
        >>> x = prepare_input(lamfast.load_model(), "bundled")
        >>> x.scale, x.hr.size, tuple(x.tensor().shape)
        (4, (256, 256), (3, 64, 64))
    """
    path = resolve(path, "image")
    from lamfast.imageio import ImageError, prepare_images, read_gray, read_rgb

    from lamfast.imageio import read_bands

    name = Path(path).name
    if Path(path).suffix.lower() == ".npy":
        if color not in (None, "bands"):
            raise LamfastError(f"{name} is an array of bands; color={color!r} is for image files", param="color")
        color, notes = "bands", []
    else:
        color, notes = choose_color(model, color)
        if color == "bands":
            raise LamfastError(f"{name}: {notes[0] if notes else 'bands'}; image files give 1 or 3 channels",
                               param="image")
    try:
        image, more = (read_bands(path) if color == "bands" else read_gray(path) if color == "gray"
                       else read_rgb(path))
    except ImageError as exc:
        raise LamfastError(str(exc), param="image") from None
    notes += more
    if scale is None:
        if model is None:
            raise LamfastError("prepare_input needs the model or its scale", param="scale")
        scale = find_scale(model, image, name, device, color)
    if lr_input:
        hr = image.resize((image.width * scale, image.height * scale), Image.BICUBIC)
        return SRInput(name, hr, image, scale, notes, color)
    try:
        hr, lr = prepare_images(image, scale)
    except ImageError as exc:
        raise LamfastError(f"{name}: {exc}", param="image") from None
    if hr.size != image.size:
        notes.append(f"cropped the HR image from {image.height}x{image.width} to {hr.height}x{hr.width} "
                     f"(HxW, a multiple of the scale {scale})")
    return SRInput(name, hr, lr, scale, notes, color)
