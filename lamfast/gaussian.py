"""Gaussian kernels and blurs: the one definition lamfast uses everywhere.

The official LAM kernel is ``exp(-(u²+v²)/(2(σ+1e-5)²))`` over
``u, v in arange(-l//2+1, l//2+1)``, normalised to sum 1. It factorises into
the 1-D taps of :func:`gaussian_taps`, so every blur here runs as two 1-D
passes in float64. Borders are reflect-101 (OpenCV's ``BORDER_REFLECT_101``,
torch's ``"reflect"``), defined for any size by :func:`reflect101_index`.

Users: the blur path's pure-torch twin (:mod:`lamfast.ops.blur_path`), LAM's
``gaussian_linear`` path, the insertion canvas of
:mod:`lamfast.faithfulness`, and SSIM's window (:mod:`lamfast.quality`,
with the exact sigma: ``eps=0``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_taps(sigma: float, size: int, eps: float = 1e-5) -> list[float]:
    """Normalised 1-D taps whose outer product is the ``size x size`` Gaussian of ``sigma + eps``.

    Example:
        >>> from lamfast.gaussian import gaussian_taps
        >>> [round(t, 4) for t in gaussian_taps(1.0, 3)]
        [0.2741, 0.4519, 0.2741]
    """
    first = (-size) // 2 + 1
    denom = 2.0 * (sigma + eps) ** 2
    taps = [math.exp(-((first + i) ** 2) / denom) for i in range(size)]
    total = math.fsum(taps)
    return [t / total for t in taps]


def reflect101_index(n: int, pad: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Source index of each of the ``n + 2*pad`` padded positions: [n+2*pad].

    OpenCV's BORDER_REFLECT_101 (torch's ``reflect``), kept defined for
    sizes torch's padding refuses (pad >= n, single pixels).
    """
    idx = []
    for p in range(-pad, n + pad):
        if n == 1:
            idx.append(0)
            continue
        while p < 0 or p >= n:
            p = -p if p < 0 else 2 * n - p - 2
        idx.append(p)
    return torch.tensor(idx, dtype=torch.long, device=device)


def gaussian_blur(image: torch.Tensor, sigma: float, size: int, eps: float = 1e-5) -> torch.Tensor:
    """The image blurred once with the ``size x size`` Gaussian (reflect-101 borders), in float64 and back.

    Args:
        image: [..., H, W] float; every leading plane is blurred alike.
        sigma, size, eps: as :func:`gaussian_taps` (the official LAM kernel by default).
    Returns:
        like ``image``.

    Example:
        >>> import torch
        >>> from lamfast.gaussian import gaussian_blur
        >>> float(gaussian_blur(torch.ones(3, 8, 8), 1.2, 9).max())  # a flat image stays flat
        1.0
    """
    H, W = image.shape[-2:]
    pad = size // 2
    taps = torch.tensor(gaussian_taps(float(sigma), size, eps), dtype=torch.float64, device=image.device)
    planes = image.to(torch.float64).reshape(-1, 1, H, W)
    planes = planes.index_select(3, reflect101_index(W, pad, image.device))
    planes = planes.index_select(2, reflect101_index(H, pad, image.device))
    out = F.conv2d(F.conv2d(planes, taps.view(1, 1, 1, size)), taps.view(1, 1, size, 1))
    return out.reshape(image.shape).to(image.dtype)


def gaussian_window(sigma: float, size: int) -> torch.Tensor:
    """The ``size x size`` Gaussian of exactly ``sigma``, normalised, float64: [size, size] (SSIM's window).

    Example:
        >>> from lamfast.gaussian import gaussian_window
        >>> w = gaussian_window(1.5, 11)
        >>> w.shape, round(float(w.sum()), 12)
        (torch.Size([11, 11]), 1.0)
    """
    taps = torch.tensor(gaussian_taps(sigma, size, eps=0.0), dtype=torch.float64)
    return taps[:, None] * taps[None, :]


__all__ = ["gaussian_blur", "gaussian_taps", "gaussian_window", "reflect101_index"]
