"""One LAM result, and how a path integral becomes one."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from lamfast.lam.crop import CropInfo
from lamfast.lam.errors import LAMError, LAMNaNWarning
from lamfast.lam.objective import Window
from lamfast.lam.params import LAMParams
from lamfast.metrics import gini as gini_index
from lamfast.ops import kde_map


@dataclass
class LAMResult:
    """One LAM computation.

    Attributes:
        attribution: [3,H,W] signed, in the model's float dtype; the official ``saliency_map_PG``.
        saliency: [H,W], ``|Σ_c attribution| / max`` (``grad_abs_norm``).
        gini: Gini coefficient of ``saliency``.
        di: Diffusion Index, ``(1 - gini) * 100``.
        sr: [3,sH,sW] the model's output for the whole input image.
        scale: SR factor s found from the model's output.
        window: (h, w, window_size) in SR pixels.
        params: the path parameters (``params.batch_size`` as asked).
        batch_size: path points per forward that ran.
        nan_steps: path steps whose gradient held NaN (zeroed, as officially).
        crop: which path ran: the LR crop box and radius, or None and why.
        timings: seconds spent per phase.
    """

    attribution: torch.Tensor
    saliency: torch.Tensor
    gini: float
    di: float
    sr: torch.Tensor
    scale: int
    window: Window
    params: LAMParams
    batch_size: int
    nan_steps: int
    crop: CropInfo
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def fold(self) -> int:
        return self.params.fold

    @property
    def sigma(self) -> float:
        return self.params.sigma

    @property
    def l(self) -> int:  # noqa: E743 - the official name
        return self.params.l

    @property
    def mode(self) -> str:
        return self.params.mode

    def kde(self) -> torch.Tensor:
        """The official KDE visual of ``saliency``: [H,W], max 1."""
        return kde_map(self.saliency)

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures and parameters (no tensors)."""
        h, w, size = self.window
        return {
            "di": self.di,
            "gini": self.gini,
            "scale": self.scale,
            "h": h,
            "w": w,
            "window_size": size,
            **self.params.defining(),
            "batch_size": self.batch_size,
            "nan_steps": self.nan_steps,
            "crop": self.crop.summary(),
            "lr_size": list(self.saliency.shape),
            "sr_size": list(self.sr.shape[-2:]),
            "timings_s": dict(self.timings),
        }


def make_result(attribution: torch.Tensor, nan_steps: int, *, sr: torch.Tensor, scale: int, window: Window,
                params: LAMParams, batch_size: int, crop: CropInfo, timings: dict[str, float],
                stacklevel: int = 2) -> LAMResult:
    """Checks, saliency, Gini and DI of a mean attribution [3,H,W].

    Raises:
        LAMError: an all-zero or non-finite attribution.
    Warns:
        LAMNaNWarning: in compat mode, when steps had NaN gradients.
    """
    fold = params.fold
    grad_sum = attribution.sum(0).abs()
    peak = grad_sum.max()
    if not bool(torch.isfinite(peak)):
        raise LAMError("attribution is not finite (inf input gradients): the model's gradient overflows")
    if peak <= 0:
        if nan_steps == fold:
            raise LAMError(
                f"attribution is all zero: all {fold} path steps had NaN gradients (sqrt(0) in the objective, "
                "typical of nearest-neighbour upsampling or clamped outputs); rerun with mode='robust'", param="mode"
            )
        raise LAMError(
            "attribution is all zero: the window's output does not depend on the input "
            "(a flat window, or a model that ignores its input there); move the window", param="window"
        )
    if nan_steps and params.mode != "robust":
        warnings.warn(
            f"LAM ({params.mode} mode): {nan_steps} of {fold} path steps had some NaN input gradients. They come "
            "from sqrt(0) in the objective where neighbouring output pixels are exactly equal (flat, clipped or "
            "quantised outputs, common for denoisers); as in the official code those entries were set to 0 and "
            "the rest of each step kept, so these are the official numbers. Where it matters, compare with "
            "mode='robust', which differs only at exact ties and has no NaN: when both give the same DI, "
            "the zeroing lost nothing.",
            LAMNaNWarning,
            stacklevel=stacklevel + 1,
        )
    saliency = grad_sum / peak
    g = float(gini_index(saliency))
    return LAMResult(attribution=attribution, saliency=saliency, gini=g, di=(1.0 - g) * 100.0, sr=sr, scale=scale,
                     window=window, params=params, batch_size=batch_size, nan_steps=nan_steps, crop=crop,
                     timings=timings)
