"""The paths LAM integrates along: LAM_Demo's three, and the IG baselines.

Every path is ``fold`` points γ_j with derivatives γ'_j, [fold,C,H,W] each;
the engine averages ``grad ⊙ γ'`` over them whatever the path, so one loop
(:func:`lamfast.path.integrate_path`) serves all of them.

- ``blur``: LAM's Gaussian-blur path (the official ``GaussianBlurPath``),
  through the :func:`lamfast.ops.blur_path` op; in ``mode="official"`` the
  official OpenCV float32 path.
- ``linear``: the official ``LinearPath`` from a zero baseline, or the
  official IG (``saliency_map_I_gradient``) from its ``gaus``, ``bif`` or
  ``mean`` baseline. IG's ``mean(grad) ⊙ (x - b)`` equals the mean of
  ``grad ⊙ (x - b)`` because the derivative is constant, so IG is this path.
- ``gaussian_linear``: the official ``GaussianLinearPath``, the straight
  line from the image blurred once with the path's ``sigma`` and ``l``.

The straight lines are the official ``interpolation``: ``b + a (x - b)``
with ``a = numpy.linspace(0, 1, fold)`` in float64 over the difference in
the image's dtype, then cast back, as the official float32 arrays are; the
derivative is ``x - b`` at every point. The first point is the baseline
itself and the last the image, as officially.
"""
from __future__ import annotations

import numpy as np
import torch

from lamfast.lam.official_path import (chw_tensor, hwc_float32, official_blur_path, official_kernel, per_plane,
                                       require_opencv)
from lamfast.lam.params import LAMParams
from lamfast.gaussian import gaussian_blur
from lamfast.ops import blur_path


def ig_baseline(image: torch.Tensor, kind: str) -> torch.Tensor:
    """The official IG baseline of an image [C,H,W] in [0,1]: OpenCV on the image × 255, float32, / 255.

    ``gaus``: ``GaussianBlur(7x7, 0)``; ``bif``: ``bilateralFilter(15, 90, 90)``
    (over the three colours jointly for an RGB image, else band by band);
    ``mean``: ``medianBlur(5)`` (the official name for it).
    """
    cv2 = require_opencv(f"baseline={kind!r} (the official IG baseline)", param="baseline")
    filters = {"gaus": lambda a: cv2.GaussianBlur(a, (7, 7), 0),
               "bif": lambda a: cv2.bilateralFilter(a, 15, 90, 90),
               "mean": lambda a: cv2.medianBlur(a, 5)}
    hwc = hwc_float32(image) * np.float32(255.0)
    return chw_tensor(per_plane(hwc, filters[kind]) / np.float32(255.0), image).to(image.dtype)


def half_fold_deriv(deriv: torch.Tensor) -> torch.Tensor:
    """The weights that make the fold/2 sum out of the fold path's gradients: [..., fold, C, H, W] -> same.

    With γ'_j = fold·I ⊛ (k_j - k_(j-1)), j = 1..fold, the fold/2 path's derivative at its point i
    (the fold path's point 2i) is (γ'_2i + γ'_(2i-1)) / 2, and its mean over fold/2 points is
    Σ_i g_2i ⊙ (γ'_2i + γ'_(2i-1)) / fold. So the weights are γ'_2i + γ'_(2i-1) at the even points
    (1-based) and 0 at the odd ones; divided by fold like the path's own sum.
    """
    out = torch.zeros_like(deriv)
    out[..., 1::2, :, :, :] = deriv[..., 1::2, :, :, :] + deriv[..., 0::2, :, :, :]
    return out


def baseline_of(image: torch.Tensor, params: LAMParams) -> torch.Tensor:
    """Where the path starts, [C,H,W] in the image's dtype: a straight line's baseline, or the blur path's
    σ_0 image (the image blurred at ``sigma``, which the official code never feeds to the model)."""
    if params.path in ("gaussian_linear", "blur"):
        if params.mode == "official":
            cv2 = require_opencv()
            kernel = official_kernel(params.l, params.sigma)
            return chw_tensor(per_plane(hwc_float32(image), lambda a: cv2.filter2D(a, -1, kernel)),
                              image).to(image.dtype)
        return gaussian_blur(image, params.sigma, params.l)
    if params.baseline == "zero":
        return torch.zeros_like(image)
    return ig_baseline(image, params.baseline)


def straight_line(image: torch.Tensor, baseline: torch.Tensor, fold: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The official ``interpolation`` from ``baseline`` to ``image`` and its derivative: [fold,C,H,W] each."""
    diff = image - baseline
    alphas = torch.from_numpy(np.linspace(0.0, 1.0, fold)).to(image.device).view(fold, 1, 1, 1)
    path = (alphas * diff.to(torch.float64) + baseline.to(torch.float64)).to(image.dtype)
    return path, diff.expand(fold, *diff.shape).contiguous()


def lam_path(image: torch.Tensor, params: LAMParams) -> tuple[torch.Tensor, torch.Tensor]:
    """The path [fold,C,H,W] and its derivative that ``params`` name, for the image [C,H,W]."""
    if params.path == "blur":
        if params.mode == "official":
            path, deriv = official_blur_path(image, params.fold, params.sigma, params.l)
            return path.to(image.dtype), deriv.to(image.dtype)
        return blur_path(image, params.fold, params.sigma, params.l)
    return straight_line(image, baseline_of(image, params), params.fold)


__all__ = ["baseline_of", "half_fold_deriv", "ig_baseline", "lam_path", "straight_line"]
