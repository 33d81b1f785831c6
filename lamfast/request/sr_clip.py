"""A folder (or glob) of frames made into a video SR model's input: :func:`prepare_clip`."""
from __future__ import annotations

import glob as globbing
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from lamfast.bundled import resolve
from lamfast.descriptor import ModelDescriptor
from lamfast.errors import LamfastError
from lamfast.request.sr_input import SCALE_PROBE, choose_color

# What counts as a frame file in a folder.
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _natural(path: Path) -> list:
    # frame_2 before frame_10, as people number frames
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def frame_files(source: str | Path) -> list[Path]:
    """The frames of a clip in order: the image files of a folder, or the files a glob pattern matches,
    sorted by name with numbers compared as numbers; ``"bundled"`` is the bundled demo clip.

    Raises:
        LamfastError (``param="video"``): nothing to read.

    Example:
        >>> from lamfast.request import frame_files
        >>> [f.name for f in frame_files("bundled")][:2]
        ['frame_0.png', 'frame_1.png']
    """
    source = resolve(source, "clip")
    path = Path(source)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES]
        where = f"the folder {path}"
    elif any(ch in str(source) for ch in "*?["):
        files = [Path(p) for p in globbing.glob(str(source)) if Path(p).is_file()]
        where = f"the pattern {source}"
    else:
        raise LamfastError(f"{source}: not a folder of frames or a glob pattern of frame files", param="video")
    if not files:
        raise LamfastError(f"{where} holds no frame images ({', '.join(FRAME_SUFFIXES)})", param="video")
    return sorted(files, key=_natural)


@dataclass
class SRClip:
    """One clip prepared for a video SR model.

    Attributes:
        name: the clip's name (its folder), for messages and stores.
        files: the frame files, in order.
        hr, lr: the HR and LR frames (PIL), as :class:`lamfast.request.SRInput` holds one image.
        scale: the model's SR factor.
        color: what the model is fed (``"rgb"``, ``"gray"``, ``"y"``).
        notes: what was converted, cropped or assumed, one line each.

    Example:
        >>> from lamfast.models import bundled_video_model
        >>> from lamfast.request import prepare_clip
        >>> clip = prepare_clip(bundled_video_model(), "bundled")
        >>> clip.name, len(clip.files), tuple(clip.tensor().shape)
        ('clip_coffee', 5, (5, 3, 64, 64))
    """

    name: str
    files: list[Path]
    hr: list[Image.Image]
    lr: list[Image.Image]
    scale: int
    notes: list[str] = field(default_factory=list)
    color: str = "rgb"

    def tensor(self) -> torch.Tensor:
        """The model's input clip: float32 [T,C,h,w] in [0,1]."""
        from lamfast.imageio import model_input

        return torch.stack([model_input(img, self.color) for img in self.lr])

    def views(self) -> tuple[list[Image.Image], list[Image.Image]]:
        """(HR frames, LR frames) as the figures draw them."""
        from lamfast.imageio import display

        return [display(img, self.color) for img in self.hr], [display(img, self.color) for img in self.lr]


def find_clip_scale(model: "nn.Module | ModelDescriptor", frames: list[Image.Image], name: str, device=None,
                    color: str = "rgb") -> int:
    """The video model's SR factor: its descriptor's, else one forward of every frame's top-left
    :data:`SCALE_PROBE` corner as one clip."""
    from lamfast.descriptor import output_scale
    from lamfast.imageio import corner, model_input
    from lamfast.modelstate import attribution_state, call_model, check_device, model_dtype

    if isinstance(model, ModelDescriptor):
        if model.scale is not None:
            return model.scale
        model = model.model
    clip = torch.stack([model_input(corner(f, SCALE_PROBE), color) for f in frames])
    x = clip[None].to(check_device(model, device), model_dtype(model))
    h, w = x.shape[-2:]
    try:
        with attribution_state(model), torch.no_grad():
            y = call_model(model, x, f"the clip's {len(frames)} frames' top-left {h}x{w} corners")
        return output_scale(y[:, 0] if isinstance(y, torch.Tensor) and y.dim() == 5 else y, (h, w))
    except LamfastError as exc:
        raise LamfastError(f"{name} (to find the scale): {exc}", param="model") from None


def prepare_clip(model: "nn.Module | ModelDescriptor | None", source: str | Path, lr_input: bool = False, *, device=None,
                 scale: int | None = None, color: str | None = None) -> SRClip:
    """Read a clip's frames and make the video model's input from them.

    Every frame is read and prepared as :func:`lamfast.request.prepare_input`
    prepares one image (HR frames cropped to a multiple of the scale and made
    LR by PIL bicubic; ``lr_input`` frames used as they are), by one scale,
    found by :func:`find_clip_scale` unless given. All frames must have one size.

    Raises:
        LamfastError: no frames, unreadable frames or frames of different sizes
            (``param="video"``), or a model that fails on the clip (``param="model"``).

    Example:
        >>> from lamfast.request import prepare_clip
        >>> clip = prepare_clip(None, "bundled", scale=2)  # the scale given: no model needed
        >>> len(clip.hr), clip.hr[0].size, clip.lr[0].size
        (5, (128, 128), (64, 64))
    """
    from lamfast.imageio import ImageError, prepare_images, read_gray, read_rgb

    files = frame_files(source)
    src = Path(str(source))
    name = src.name if src.is_dir() else (files[0].parent.name or files[0].stem)
    color, notes = choose_color(model, color)  # a video model's first convolution tells as an image model's does
    if color == "bands":
        raise LamfastError(f"{notes[0] if notes else 'bands'}; a clip's frames are image files of 1 or 3 channels",
                           param="video")
    frames = []
    for f in files:
        try:
            img, more = read_gray(f) if color == "gray" else read_rgb(f)
        except ImageError as exc:
            raise LamfastError(str(exc), param="video") from None
        notes += [f"{f.name}: {line}" for line in more]
        frames.append(img)
    sizes = {img.size for img in frames}
    if len(sizes) > 1:
        raise LamfastError(f"{name}: the frames differ in size ({', '.join(f'{w}x{h}' for w, h in sorted(sizes))}, "
                           f"WxH); a clip's frames must have one size", param="video")
    if scale is None:
        if model is None:
            raise LamfastError("prepare_clip needs the model or its scale", param="scale")
        scale = find_clip_scale(model, frames, name, device, color)
    if lr_input:
        hr = [img.resize((img.width * scale, img.height * scale), Image.BICUBIC) for img in frames]
        return SRClip(name, files, hr, frames, scale, notes, color)
    try:
        pairs = [prepare_images(img, scale) for img in frames]
    except ImageError as exc:
        raise LamfastError(f"{name}: {exc}", param="video") from None
    hr, lr = [p[0] for p in pairs], [p[1] for p in pairs]
    if hr[0].size != frames[0].size:
        notes.append(f"cropped the HR frames from {frames[0].height}x{frames[0].width} to {hr[0].height}x"
                     f"{hr[0].width} (HxW, a multiple of the scale {scale})")
    return SRClip(name, files, hr, lr, scale, notes, color)


__all__ = ["FRAME_SUFFIXES", "SRClip", "find_clip_scale", "frame_files", "prepare_clip"]
