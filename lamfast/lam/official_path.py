"""The blur path exactly as the official LAM code builds it, with OpenCV.

``mode="official"`` uses this path. The official ``GaussianBlurPath`` builds
one float64 ``l x l`` kernel per step, from ``np.meshgrid`` of
``arange(-l//2 + 1, l//2 + 1)``, as ``exp(-(x² + y²) / (2 (σ + 1e-5)²))`` over
its sum. It filters the float32 HWC image with ``cv2.filter2D`` (correlation,
BORDER_REFLECT_101). The derivative filters the image with
``(k_j - k_{j-1}) · fold``, not the difference of two blurred images. Both
are kept in float32.

OpenCV filters directly for small kernels and through a DFT for larger ones
(the switch measured here at l >= 13). Its float32 rounding is not lamfast's
float64 path (which differs by up to about 4e-7), and where output pixels tie
exactly (the NaN steps) that decides which gradient entries are zeroed. Only
this path reproduces those cases bit for bit.

OpenCV is optional (``bash scripts/setup.sh --extras official``) and imported
only here, on first use.
"""
from __future__ import annotations

import numpy as np
import torch

from lamfast.errors import LAMError


def official_kernel(l: int, sigma: float) -> np.ndarray:
    """The official isotropic Gaussian kernel: [l, l] float64, sum 1."""
    ax = np.arange(-l // 2 + 1.0, l // 2 + 1.0)
    xx, yy = np.meshgrid(ax, ax)
    kernel = np.exp(-(xx**2 + yy**2) / (2.0 * (sigma + 1e-5) ** 2))
    return kernel / np.sum(kernel)


def require_opencv(needed_by: str = "mode='official' (the official code's OpenCV blur path)", param: str = "mode"):
    """The cv2 module; LAMError (one line, naming ``param``) when OpenCV is missing."""
    from lamfast.optional import MissingDependency, import_optional

    try:
        return import_optional("cv2", needed_by, param=param)
    except MissingDependency as exc:
        raise LAMError(str(exc), param=param) from None


def hwc_float32(image: torch.Tensor) -> np.ndarray:
    """[C,H,W] tensor -> contiguous float32 HWC array, as the official code hands images to OpenCV."""
    return np.ascontiguousarray(image.detach().to("cpu", torch.float32).permute(1, 2, 0).numpy())


def per_plane(hwc: np.ndarray, fn) -> np.ndarray:
    """``fn`` (an OpenCV filter) on an HWC image: whole for 3 channels, as officially, else one plane at a
    time (OpenCV drops a single channel's axis and caps channel counts)."""
    if hwc.shape[2] == 3:
        return fn(hwc)
    return np.stack([fn(np.ascontiguousarray(hwc[:, :, c])) for c in range(hwc.shape[2])], axis=2)


def chw_tensor(hwc: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """HWC array -> [C,H,W] float32 tensor on ``like``'s device."""
    return torch.from_numpy(np.ascontiguousarray(hwc)).permute(2, 0, 1).contiguous().to(like.device)


def official_blur_path(image: torch.Tensor, fold: int, sigma: float, l: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The official path and derivative of one image.

    Args:
        image: [C,H,W] in [0,1], any device and float dtype; it is filtered
            as float32 on the host, as officially (RGB as one HxWx3 array, as
            the official code does; other channel counts one plane at a time).
        fold, sigma, l: the path parameters.
    Returns:
        (path, deriv), each [fold,C,H,W] float32 on ``image``'s device;
        ``path[j-1]`` is γ_j, the official ``image_interpolation[j-1]``.
    Raises:
        LAMError: OpenCV is missing.
    """
    cv2 = require_opencv()
    hwc = hwc_float32(image)
    kernels = [official_kernel(l, s) for s in np.linspace(sigma, 0, fold + 1)]
    path = np.empty((fold, *hwc.shape), dtype=np.float32)
    deriv = np.empty((fold, *hwc.shape), dtype=np.float32)
    def filtered(kernel):
        return per_plane(hwc, lambda plane: cv2.filter2D(plane, -1, kernel))

    for j in range(fold):
        path[j] = filtered(kernels[j + 1])
        deriv[j] = filtered((kernels[j + 1] - kernels[j]) * fold)
    to = dict(device=image.device)
    return (torch.from_numpy(path).permute(0, 3, 1, 2).contiguous().to(**to),
            torch.from_numpy(deriv).permute(0, 3, 1, 2).contiguous().to(**to))
