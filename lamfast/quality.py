"""Image quality of an SR output against its HR image, as SR papers report it: PSNR and SSIM.

The convention (the one of EDSR, RCAN, SwinIR and BasicSR's ``calculate_psnr`` /
``calculate_ssim`` with ``test_y_channel=True``), named here once so reports can cite it:

- Both images are quantised to 8 bits: clamp to [0, 1], ``round(255 · x)``.
- RGB images are compared on the Y of YCbCr (BT.601 studio range, MATLAB's
  ``rgb2ycbcr``); single-band images on that band; other band counts on
  every band.
- A border of ``scale`` pixels is cropped on every side.
- PSNR is ``10 log10(255² / MSE)``.
- SSIM is Wang et al. (2004): an 11x11 Gaussian window, sigma 1.5, K1 = 0.01,
  K2 = 0.03, L = 255, averaged over the window positions inside the image
  (scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)``), per band, then averaged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lamfast.errors import LamfastError
from lamfast.gaussian import gaussian_window
from lamfast.imageio import ycbcr_y

CONVENTION = ("PSNR and SSIM on the Y channel (BT.601) of 8-bit images, a border of scale pixels cropped; SSIM with "
              "an 11x11 Gaussian window, sigma 1.5")


@dataclass(frozen=True)
class Quality:
    """PSNR (dB) and SSIM of one SR output against its HR image."""

    psnr: float
    ssim: float


def _eight_bit(x: torch.Tensor) -> torch.Tensor:
    return (x.detach().double().clamp(0.0, 1.0) * 255.0).round()


def _compared(img: torch.Tensor) -> torch.Tensor:
    """[C,H,W] in [0,1] -> [B,H,W] on the 0-255 scale: the Y of 8-bit RGB, else the 8-bit bands."""
    q = _eight_bit(img)
    return ycbcr_y(q / 255.0)[0:1] * 255.0 if q.shape[0] == 3 else q


def _ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM of two [B,H,W] images on the 0-255 scale, band by band, then averaged."""
    window = gaussian_window(1.5, 11)[None, None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x, y = a[:, None], b[:, None]
    mx, my = F.conv2d(x, window), F.conv2d(y, window)
    sxx = F.conv2d(x * x, window) - mx * mx
    syy = F.conv2d(y * y, window) - my * my
    sxy = F.conv2d(x * y, window) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean(dim=(1, 2, 3)).mean())


def sr_quality(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> Quality:
    """PSNR and SSIM of ``sr`` against ``hr`` by the module's convention.

    Args:
        sr, hr: [C,H,W] images in [0, 1], the same shape (C = 3 is compared on Y).
        scale: the SR factor: the border cropped on every side, in pixels.
    Returns:
        Quality; ``psnr`` is ``inf`` for identical images.
    Raises:
        LamfastError: shapes differ, or the image is too small for the border and the 11x11 window.
    """
    a, b = _cropped(sr, hr, scale)
    if min(a.shape[-2:], default=0) < 11:
        raise LamfastError(f"a {tuple(sr.shape[-2:])} image less a border of {scale} is too small for SSIM's 11x11 "
                           f"window", param="sr")
    return Quality(_psnr(a, b), _ssim(a, b))


def _cropped(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    if sr.shape != hr.shape or sr.dim() != 3:
        raise LamfastError(f"SR {tuple(sr.shape)} and HR {tuple(hr.shape)} must be one [C,H,W] shape", param="sr")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 0:
        raise LamfastError(f"scale must be an integer >= 0, got {scale!r}", param="scale")
    a, b = _compared(sr.cpu()), _compared(hr.cpu())
    if scale:
        a, b = a[:, scale:-scale, scale:-scale], b[:, scale:-scale, scale:-scale]
    if a.numel() == 0:
        raise LamfastError(f"a {tuple(sr.shape[-2:])} image less a border of {scale} is empty", param="sr")
    return a, b


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def sr_psnr(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> float:
    """PSNR (dB) of ``sr`` against ``hr`` by the module's convention (as :func:`sr_quality`, without SSIM, so
    images of any size).

    Example:
        >>> import torch
        >>> from lamfast.quality import sr_psnr
        >>> hr = torch.full((3, 8, 8), 0.5)
        >>> round(sr_psnr(hr + 0.01, hr, 2), 2)
        43.43
    """
    return _psnr(*_cropped(sr, hr, scale))
