"""The patch bank CEM's interventions draw from, and each patch made the size of a block.

A bank is P uint8 patches of one channel count. It comes from a folder of image files (read as
RGB), a list of arrays or paths, or the default: :func:`default_bank`, 8x8 patches cut from the
images lamfast ships (the official bank holds 8x8 patches cut from DIV2K).

The official code reads its patch files with OpenCV, so they are BGR, and writes them into the RGB
input unswapped. This bank reads files as RGB; give arrays (``patches=[...]``) to reproduce the
swap on purpose.

A patch whose size differs from the block is resized with cubic interpolation, as the official
``cv2.resize(..., INTER_CUBIC)`` does: with OpenCV when it is installed (the official numbers),
else with torch's bicubic (A = -0.75, half-pixel centres, rounded to uint8), which differs from
OpenCV's fixed-point arithmetic by about one grey level. The result names the one that ran.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from lamfast.errors import LamfastError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff"}
# The default bank: 8x8 patches (the official patch size) on a 16-px grid of the shipped photos.
DEFAULT_PATCH = 8
DEFAULT_STRIDE = 16


@dataclass(frozen=True)
class PatchBank:
    """P uint8 patches ``[P, h, w, C]`` (one size), and where they came from.

    Example:
        >>> import numpy as np
        >>> from lamfast.cem import PatchBank
        >>> bank = PatchBank.of([np.full((8, 8, 3), 200, np.uint8), np.zeros((8, 8, 3), np.uint8)])
        >>> len(bank), bank.channels, bank.source
        (2, 3, '2 arrays')
    """

    patches: np.ndarray
    source: str

    def __len__(self) -> int:
        return int(self.patches.shape[0])

    @property
    def channels(self) -> int:
        return int(self.patches.shape[-1])

    @classmethod
    def of(cls, patches: Any) -> "PatchBank":
        """A bank from ``"bundled"`` (or None: :func:`default_bank`), a folder, or a list of uint8
        ``[h, w, C]`` / ``[h, w]`` arrays or image paths."""
        if isinstance(patches, PatchBank):
            return patches
        if patches is None or (isinstance(patches, str) and patches == "bundled"):
            return default_bank()
        if isinstance(patches, (str, Path)):
            folder = Path(patches)
            if not folder.is_dir():
                raise LamfastError(f"patches={str(patches)!r} is not a folder of patch images", param="patches")
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise LamfastError(f"the patch folder {str(folder)!r} holds no image files", param="patches")
            return cls(_stack([_read(p) for p in files], str(folder)), f"{len(files)} files in {folder}")
        if isinstance(patches, np.ndarray) and patches.ndim == 4:
            patches = list(patches)
        if not isinstance(patches, Sequence) or isinstance(patches, str) or not patches:
            raise LamfastError("patches must be 'bundled', a folder, or a non-empty list of uint8 arrays or image "
                               f"paths, got {type(patches).__name__}", param="patches")
        arrays = [_read(p) if isinstance(p, (str, Path)) else _array(p, i) for i, p in enumerate(patches)]
        kinds = "arrays" if not any(isinstance(p, (str, Path)) for p in patches) else "patches"
        return cls(_stack(arrays, "the list"), f"{len(arrays)} {kinds}")

    def resized(self, block: int) -> tuple[np.ndarray, str]:
        """Every patch as ``[P, block, block, C]`` uint8, and how they were resized (``"none"``,
        ``"opencv"`` or ``"torch"``)."""
        h, w = self.patches.shape[1:3]
        if (h, w) == (block, block):
            return self.patches, "none"
        try:
            import cv2  # the official resize, when it is installed
        except ImportError:
            cv2 = None
        if cv2 is not None:
            out = [cv2.resize(p, (block, block), interpolation=cv2.INTER_CUBIC) for p in self.patches]
            return np.stack([o if o.ndim == 3 else o[..., None] for o in out]), "opencv"
        t = torch.from_numpy(self.patches).permute(0, 3, 1, 2).double()
        t = torch.nn.functional.interpolate(t, size=(block, block), mode="bicubic", align_corners=False)
        return t.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy(), "torch"


def _array(p: Any, i: int) -> np.ndarray:
    a = p.detach().cpu().numpy() if isinstance(p, torch.Tensor) else np.asarray(p)
    if a.dtype != np.uint8 or a.ndim not in (2, 3):
        raise LamfastError(f"patches[{i}] must be a uint8 array [h,w,C] or [h,w], got {a.dtype} {a.shape}",
                           param="patches")
    return a if a.ndim == 3 else a[..., None]


def _read(path: "str | Path") -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("L" if img.mode in ("L", "I;16", "I") else "RGB"))
    except (OSError, ValueError) as exc:
        raise LamfastError(f"cannot read the patch {str(path)!r} ({type(exc).__name__})", param="patches") from None


def _stack(arrays: list[np.ndarray], where: str) -> np.ndarray:
    arrays = [a if a.ndim == 3 else a[..., None] for a in arrays]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise LamfastError(f"the patches in {where} differ in size or channels ({sorted(shapes)[:3]}); a bank "
                           "holds patches of one size", param="patches")
    return np.ascontiguousarray(np.stack(arrays))


_DEFAULT: list[PatchBank] = []


def default_bank() -> PatchBank:
    """The bank ``patches="bundled"`` names: every 8x8 patch on a 16-pixel grid of the photos lamfast
    ships (the astronaut and the coffee cup, RGB), 640 patches, in a fixed order.

    Example:
        >>> from lamfast.cem import default_bank
        >>> bank = default_bank()
        >>> len(bank), bank.patches.shape[1:]
        (640, (8, 8, 3))
    """
    if not _DEFAULT:
        from PIL import Image

        from lamfast.bundled import data_path

        cut = []
        for name in ("astronaut.png", "coffee.png"):
            with Image.open(data_path(name)) as img:
                a = np.asarray(img.convert("RGB"))
            for y in range(0, a.shape[0] - DEFAULT_PATCH + 1, DEFAULT_STRIDE):
                for x in range(0, a.shape[1] - DEFAULT_PATCH + 1, DEFAULT_STRIDE):
                    cut.append(a[y:y + DEFAULT_PATCH, x:x + DEFAULT_PATCH])
        _DEFAULT.append(PatchBank(np.ascontiguousarray(np.stack(cut)), "bundled (8x8 patches of the shipped photos)"))
    return _DEFAULT[0]


__all__ = ["PatchBank", "default_bank"]
