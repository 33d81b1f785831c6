"""Image files in and out, with the official LAM preprocessing.

Every reading problem becomes an :class:`ImageError` with one line; odd
formats (grayscale, RGBA, 16-bit, palette) are converted to 8-bit RGB and
the conversion is reported.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lamfast.errors import LamfastError, first_line


class ImageError(LamfastError):
    """An image cannot be used (one-line message)."""


def read_rgb(path: str | Path) -> tuple[Image.Image, list[str]]:
    """Open an image file as 8-bit RGB; returns (image, conversion notes)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            tiles = list(getattr(img, "tile", None) or [])  # before load() empties it: the stored bit depth
            img.load()
            mode = img.mode
            notes = []
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img).astype(np.float64)
                peak = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
                img = Image.fromarray(np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)).convert("RGB")
                notes.append(f"converted 16-bit grayscale ({mode}) to 8-bit RGB")
            elif mode == "RGBA" or mode == "LA" or (mode == "P" and "transparency" in img.info):
                img = img.convert("RGBA")
                alpha = np.asarray(img)[..., 3]
                if alpha.min() < 255:
                    # As PIL's convert("RGB") and the official code: the stored colours stay.
                    notes.append("image has transparency: alpha dropped, the colours under transparent pixels "
                                 "kept as stored")
                img = img.convert("RGB")
                notes.append(f"converted {mode} to RGB")
            elif mode != "RGB":
                img = img.convert("RGB")
                notes.append(f"converted {mode} to RGB")
            else:
                img = img.copy()
            if any(str(getattr(tile, "args", "") or "").endswith(";16B") for tile in tiles):
                # PIL decodes 16-bit colour PNGs to their 8 high bits; LAM's preprocessing is 8-bit too.
                notes.append("16-bit colour image read as 8 bits per channel (the 8 high bits)")
    except UnidentifiedImageError:
        raise ImageError(f"not an image file (or an unsupported format): {path}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"cannot read image {path}: {first_line(exc)}") from None
    if img.width < 1 or img.height < 1:
        raise ImageError(f"image {path} is empty")
    return img, notes


class Bands:
    """A multi-band image (C >= 1 float bands, as remote sensing and medical SR use), with the few PIL
    image methods the LAM preprocessing calls: ``size``, ``crop`` and ``resize``, band by band."""

    mode = "bands"

    def __init__(self, planes: list[Image.Image]):
        if not planes or any(p.mode != "F" or p.size != planes[0].size for p in planes):
            raise ImageError("Bands: one or more float (PIL 'F') planes of one size")
        self.planes = planes

    @classmethod
    def from_array(cls, arr: np.ndarray) -> "Bands":
        """[C,H,W] float array -> Bands."""
        return cls([Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), "F") for a in arr])

    @property
    def size(self) -> tuple[int, int]:
        return self.planes[0].size

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    @property
    def bands(self) -> int:
        return len(self.planes)

    def crop(self, box) -> "Bands":
        return Bands([p.crop(box) for p in self.planes])

    def resize(self, size, resample=Image.BICUBIC) -> "Bands":
        return Bands([p.resize(size, resample) for p in self.planes])

    def tensor(self) -> torch.Tensor:
        return torch.from_numpy(np.stack([np.asarray(p, dtype=np.float32) for p in self.planes]).copy())


def read_bands(path: str | Path) -> tuple[Bands, list[str]]:
    """A NumPy file (``.npy``) of bands [C,H,W] (or one band [H,W]) as :class:`Bands`, values as they are:
    uint8 / 255, uint16 / 65535, floats unchanged. Returns (bands, notes)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image not found: {path}")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot read bands from {path} (a .npy array [C,H,W]): {first_line(exc)}") from None
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise ImageError(f"{path}: bands must be an array [C,H,W] or [H,W], got shape {arr.shape}")
    notes = [f"read {arr.shape[0]} band(s) of {arr.shape[1]}x{arr.shape[2]} (HxW) from a {arr.dtype} array"]
    if arr.dtype == np.uint8 or arr.dtype == np.uint16:
        peak = 255.0 if arr.dtype == np.uint8 else 65535.0
        arr = arr.astype(np.float64) / peak
        notes.append(f"values / {peak:g}")
    elif not np.issubdtype(arr.dtype, np.floating):
        raise ImageError(f"{path}: bands must be uint8, uint16 or float, got {arr.dtype}")
    elif np.isfinite(arr).all() and (arr.min() < 0 or arr.max() > 1):
        notes.append(f"values span [{arr.min():.4g}, {arr.max():.4g}], outside [0, 1]: kept as they are")
    if not np.isfinite(arr).all():
        raise ImageError(f"{path}: the bands hold NaN or infinite values")
    return Bands.from_array(arr), notes


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL -> float32 [C,H,W] in [0,1] (torchvision's to_tensor): RGB -> [3,H,W]; 8-bit gray ("L")
    and float gray ("F", already in [0,1]) -> [1,H,W]; any other mode is converted to RGB;
    :class:`Bands` -> [C,H,W]."""
    if isinstance(img, Bands):
        return img.tensor()
    if img.mode == "F":
        return torch.from_numpy(np.asarray(img, dtype=np.float32).copy())[None]
    if img.mode == "L":
        return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy())[None].float().div_(255.0)
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


# The ways an image file becomes a model's input: RGB, one gray band, the Y of YCbCr, or the bands of
# a .npy file.
COLORS = ("rgb", "gray", "y", "bands")


def read_gray(path: str | Path) -> tuple[Image.Image, list[str]]:
    """An image file as one gray band: 8-bit as "L", 16-bit as "F" in [0,1] (values / 65535, kept as
    they are); colour images by PIL's ITU-R 601-2 luma. Returns (image, notes)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img).astype(np.float64)
                peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
                return Image.fromarray((arr / peak).astype(np.float32), "F"), [
                    f"read {img.mode} grayscale as it is (values / {peak:g})"]
            if img.mode == "L":
                return img.copy(), []
            return img.convert("L"), [f"converted {img.mode} to grayscale (PIL's ITU-R 601-2 luma)"]
    except UnidentifiedImageError:
        raise ImageError(f"not an image file (or an unsupported format): {path}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"cannot read image {path}: {first_line(exc)}") from None


def ycbcr_y(rgb: torch.Tensor) -> torch.Tensor:
    """The Y of YCbCr as SR evaluation code computes it (MATLAB's ``rgb2ycbcr``, ITU-R BT.601, studio
    range): ``(16 + 65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in [0,1]. [3,H,W] -> [1,H,W]."""
    weights = torch.tensor([65.481, 128.553, 24.966], dtype=rgb.dtype, device=rgb.device)
    return ((16.0 + (rgb * weights[:, None, None]).sum(dim=0, keepdim=True)) / 255.0)


def model_input(img: Image.Image, color: str) -> torch.Tensor:
    """What a model of ``color`` gets from an image: [3,H,W] RGB, [1,H,W] gray, or [1,H,W] Y of its RGB."""
    return ycbcr_y(to_tensor(img)) if color == "y" else to_tensor(img)


def parse_bands(text: str | None) -> tuple[int, int, int] | None:
    """``"3,2,1"`` -> (3, 2, 1): the three bands (1-based, as GDAL numbers them) drawn as red, green, blue."""
    if text is None:
        return None
    try:
        picked = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        picked = ()
    if len(picked) != 3 or min(picked) < 1:
        raise LamfastError(f"bands are three band numbers from 1, as R,G,B (e.g. 3,2,1), got {text!r}",
                           param="bands")
    return picked  # type: ignore[return-value]


def check_bands(bands: tuple[int, int, int] | None, count: int) -> None:
    """Refuse band numbers beyond the image's ``count`` bands."""
    if bands is not None and max(bands) > count:
        raise LamfastError(f"bands {','.join(map(str, bands))}: the image has {count} band(s)", param="bands")


def display(img: Image.Image, color: str, bands: tuple[int, int, int] | None = None) -> Image.Image:
    """The image as the figures draw it: the RGB image, or its gray band (Y for ``color="y"``) in 8 bits;
    :class:`Bands` as the per-pixel mean of the bands, or as RGB of three ``bands`` (1-based)."""
    if isinstance(img, Bands):
        return to_pil(img.tensor(), bands).convert("RGB" if bands or img.bands == 3 else "L")
    if color == "rgb":
        return img.convert("RGB")
    band = model_input(img, color)[0].clamp(0, 1).mul(255).round().byte().cpu().numpy()
    return Image.fromarray(band, "L")


def to_pil(t: torch.Tensor, bands: tuple[int, int, int] | None = None) -> Image.Image:
    """float [C,H,W] in [0,1] -> PIL RGB (clamped; rounding as torchvision's to_pil_image).

    C = 3 is drawn as it is; any other channel count as gray: the single
    band, or the per-pixel mean of the bands; ``bands`` (three 1-based band
    numbers) draws those bands as red, green and blue instead.
    """
    t = t.detach().float()
    if bands is not None:
        check_bands(bands, t.shape[0])
        t = t[[b - 1 for b in bands]]
    elif t.shape[0] != 3:
        t = t.mean(dim=0, keepdim=True).expand(3, *t.shape[1:])
    arr = t.clamp(0, 1).mul(255).byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def prepare_images(hr: Image.Image, scale: int) -> tuple[Image.Image, Image.Image]:
    """The official ``prepare_images``: crop HR to a multiple of ``scale``, PIL-bicubic LR.

    Returns:
        (hr_cropped, lr) as PIL images (or :class:`Bands`, band by band).
    """
    w, h = hr.size
    w, h = w - w % scale, h - h % scale
    if w < scale or h < scale:
        raise ImageError(f"image {hr.height}x{hr.width} (HxW) is smaller than the scale {scale}")
    hr = hr.crop((0, 0, w, h))
    lr = hr.resize((w // scale, h // scale), Image.BICUBIC)
    return hr, lr


def corner(image: Image.Image, size: int) -> Image.Image:
    """The top-left ``size`` x ``size`` corner of a PIL image (the whole image when smaller)."""
    return image.crop((0, 0, min(size, image.width), min(size, image.height)))
