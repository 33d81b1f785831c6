"""LAM results: :class:`LAMResult` for an image, :class:`VideoLAMResult` for a clip, and how a path
integral becomes one."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lamfast.errors import LAMError
from lamfast.lam.crop import CropInfo
from lamfast.lam.objective import Window
from lamfast.lam.params import LAMParams
from lamfast.metrics import di_from_gini, diffusion_index, gini, saliency
from lamfast.ops import kde_map


@dataclass
class LAMResult:
    """One LAM computation of one window.

    Attributes:
        attribution: [C,H,W] signed, in the model's float dtype: the official ``saliency_map_PG``
            (for a clip [T,C,H,W]).
        saliency: [H,W], ``|Σ_c attribution| / max`` (``grad_abs_norm``; a clip's [T,H,W] share one peak).
        gini: Gini coefficient of ``saliency`` (a clip's: of all its frames as one map).
        di: Diffusion Index, ``(1 - gini) * 100``.
        sr: [C',sH,sW] the model's output for the whole input (a clip's: the attributed frame).
        scale: SR factor s found from the model's output.
        window: (h, w, window_size) in SR pixels.
        params: what defines the result (:class:`LAMParams`).
        batch_size: path points per forward that ran.
        nan_steps: path steps whose gradient held NaN (zeroed, as officially).
        crop: which path ran: the LR crop box and radius, or None and why.
        timings: seconds spent per phase.
        di_fold_half: the DI of the fold/2 sum, over every second point of this path (the fold/2
            path's points, whose gradients this run already computed); ``|di - di_fold_half|``
            says how far the fold Riemann sum is from converged (the error of a first-order sum
            halves as fold doubles). None where the fold/2 points are not among this path's: an
            odd ``fold``, or a straight-line path (``linspace(0, 1, fold)`` holds no other
            ``linspace``'s points); and for an all-zero fold/2 sum.
        completeness: ``sum(attribution) / (F(x) - F(γ_0))``, F the window's objective and γ_0 the
            path's start (the image blurred at ``sigma``, or the baseline): 1 for the exact path
            integral, so its distance from 1 is the sum's discretisation error (plus any NaN steps
            zeroed). None where F(x) = F(γ_0).

    Example:
        >>> import lamfast
        >>> from lamfast.request import prepare_input
        >>> model = lamfast.load_model()  # the bundled x4 TinySR
        >>> r = lamfast.lam(model, prepare_input(model, "bundled").tensor(), 150, 110, fold=4)
        >>> r.attribution.shape, r.saliency.shape, r.sr.shape
        (torch.Size([3, 64, 64]), torch.Size([64, 64]), torch.Size([3, 256, 256]))
        >>> r.di == (1 - r.gini) * 100
        True
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
    di_fold_half: float | None = None
    completeness: float | None = None

    def kde(self) -> torch.Tensor:
        """The official KDE visual of ``saliency``: [H,W] float64, max 1."""
        return kde_map(self.saliency.double())

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures and parameters (no tensors)."""
        h, w, size = self.window
        return {"di": self.di, "gini": self.gini, "di_fold_half": self.di_fold_half,
                "completeness": self.completeness, "scale": self.scale, "h": h, "w": w, "window_size": size,
                **self.params.defining(), "batch_size": self.batch_size, "nan_steps": self.nan_steps,
                "crop": self.crop.summary(), "lr_size": list(self.saliency.shape[-2:]),
                "sr_size": list(self.sr.shape[-2:]), "timings_s": dict(self.timings)}


@dataclass
class VideoLAMResult(LAMResult):
    """LAM of one window of one output frame of a clip: :class:`LAMResult` over its T frames.

    Attributes:
        frame_share: [T], each frame's part of the clip's total saliency (sums to 1).
        di_per_frame: [T], each frame's own map normalised on its own (the public VSR fork's figure).
        frame: the output frame whose window was attributed (None for a centre-frame model).

    Example:
        >>> import torch, lamfast
        >>> from lamfast.models import bundled_video_model
        >>> clip = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))  # [T,C,H,W]
        >>> r = lamfast.lam(bundled_video_model(), clip, 8, 8, 16, fold=4)
        >>> r.attribution.shape, r.saliency.shape, r.frame_share.shape, r.frame
        (torch.Size([5, 3, 16, 16]), torch.Size([5, 16, 16]), torch.Size([5]), None)
    """

    frame_share: torch.Tensor = None  # type: ignore[assignment]
    di_per_frame: torch.Tensor = None  # type: ignore[assignment]
    frame: int | None = None

    def kde(self) -> torch.Tensor:
        """[T,H,W] float64: each frame's official KDE (peak 1) times its share over the largest share, so
        frames compare (an all-zero frame gives zeros)."""
        shares = self.frame_share.double()
        shares = (shares / shares.max()).tolist()
        maps = self.saliency.double()
        return torch.stack([kde_map(m) * w if float(m.max()) > 0 else torch.zeros_like(m) for m, w in zip(maps, shares)])

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "di_per_frame": [float(v) for v in self.di_per_frame],
                "frame_share": [float(v) for v in self.frame_share], "frame": self.frame,
                "frames": int(self.attribution.shape[0])}


def _di_of(attribution: torch.Tensor) -> float | None:
    """The DI of an attribution [C,H,W] or [T,C,H,W] (None when it is all zero)."""
    if float(attribution.sum(dim=-3).abs().max()) <= 0:
        return None
    sal = saliency(attribution)
    return di_from_gini(float(gini(sal.reshape(-1, sal.shape[-1]))))


def make_result(attribution: torch.Tensor, nan_steps: int, *, frames: int | None, frame: int | None,
                half: torch.Tensor | None = None, change: torch.Tensor | None = None, **fields: Any) -> LAMResult:
    """The result of a mean attribution [C,H,W] (a clip's [T·C,H,W], with ``frames`` T).

    ``half``: the fold/2 mean attribution, same shape, or None; ``change``: F(x) - F(γ_0), the
    objective's change along the path, or None. ``fields``: sr, scale, window, params, batch_size,
    crop, timings (as :class:`LAMResult`).

    Raises:
        LAMError: an all-zero or non-finite attribution.
    """
    params: LAMParams = fields["params"]
    if frames is not None:
        attribution = attribution.reshape(frames, -1, *attribution.shape[-2:])
    peak = attribution.sum(dim=-3).abs().max()
    if not bool(torch.isfinite(peak)):
        raise LAMError("attribution is not finite (inf input gradients): the model's gradient overflows")
    if peak <= 0:
        if nan_steps == params.fold:
            raise LAMError(
                f"attribution is all zero: all {params.fold} path steps had NaN gradients (sqrt(0) in the objective, "
                "typical of nearest-neighbour upsampling or clamped outputs); rerun with mode='robust'", param="mode"
            )
        raise LAMError(
            "attribution is all zero: the window's output does not depend on the input "
            "(a flat window, or a model that ignores its input there); move the window", param="window"
        )
    sal = saliency(attribution)
    g = float(gini(sal.reshape(-1, sal.shape[-1])))
    if half is not None and frames is not None:
        half = half.reshape(attribution.shape)
    change_f = None if change is None else float(change)
    completeness = float(attribution.sum(dtype=torch.float64)) / change_f if change_f else None
    common = dict(attribution=attribution, saliency=sal, gini=g, di=di_from_gini(g), nan_steps=nan_steps,
                  di_fold_half=None if half is None else _di_of(half), completeness=completeness, **fields)
    if frames is None:
        return LAMResult(**common)
    share = sal.flatten(1).sum(dim=1)
    own = torch.stack([saliency(a[None])[0] for a in attribution])  # each frame on its own peak
    return VideoLAMResult(**common, frame_share=share / share.sum(), di_per_frame=diffusion_index(own), frame=frame)


def nan_warning(params: LAMParams, where: str) -> str:
    """The text of a :class:`lamfast.LAMNaNWarning`; ``where`` says what had NaN steps, e.g. ``"3 of 50 path
    steps had"``."""
    return (f"LAM ({params.mode} mode): {where} some NaN input gradients. They come from sqrt(0) in the "
            "objective where neighbouring output pixels are exactly equal (flat, clipped or quantised outputs, "
            "common for denoisers); as in the official code those entries were set to 0 and the rest of each step "
            "kept, so these are the official numbers. Where it matters, compare with mode='robust', which differs "
            "only at exact ties and has no NaN: when both give the same DI, the zeroing lost nothing.")


__all__ = ["LAMResult", "VideoLAMResult", "make_result", "nan_warning"]
