"""LAM for video SR: which frames, and which pixels of each, a restored window uses.

The clip [T,C,H,W] runs through the image engine as one image of T·C
channels: a wrapper hands the model [B,T,C,H,W] and gives the engine the
attributed output frame [B,C,sH,sW]. So the path blurs every frame with the
same kernel at each step, exactly as the image path blurs each channel;
several windows share forwards as in :func:`lamfast.lam_windows`; and
receptive-field crops run where the reach measurement finds the model local
in space, and the crop check on the clip holds them exact. A model that
mixes pixels far apart (flow warping, recurrence over the clip) reaches the
border of the probe, and the whole clip runs; ``crop`` says so. Nothing is
cut in time: every input frame stays in.

The model maps [B,T,C,H,W] to [B,T,C',sH,sW] (recurrent and all-frame
models: ``frame`` picks the output frame, by default the middle one,
``ceil(T/2) - 1``) or to [B,C',sH,sW] (centre-frame models: ``frame`` must
be None).
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, Union

import torch
from torch import nn

from lamfast.errors import first_line
from lamfast.lam.crop import CropInfo
from lamfast.lam.engine import lam_windows
from lamfast.lam.errors import LAMError
from lamfast.lam.params import LAMParams
from lamfast.metrics import diffusion_index

Windows = Union[Sequence[Sequence[int]], Callable[[torch.Tensor], Sequence[Sequence[int]]]]


@dataclass
class VideoLAMResult:
    """LAM of one window of one output frame of a clip.

    Attributes:
        attribution: [T,C,H,W] signed: the mean over path steps of gradient times path derivative.
        saliency: [T,H,W], ``|Σ_c attribution|`` over the peak of the whole clip, so frames compare.
        frame_share: [T], each frame's part of the clip's total saliency (sums to 1).
        di: Diffusion Index of the clip's joint saliency (all T·H·W pixels as one map).
        di_per_frame: [T], each frame's own map normalised on its own (the public VSR fork's figure).
        frame: the output frame whose window was attributed (None for a centre-frame model).
        sr: [C',sH,sW] that output frame for the whole clip.
        scale, window, params, batch_size, nan_steps, crop, timings: as :class:`lamfast.LAMResult`.
    """

    attribution: torch.Tensor
    saliency: torch.Tensor
    frame_share: torch.Tensor
    di: float
    di_per_frame: torch.Tensor
    frame: int | None
    sr: torch.Tensor
    scale: int
    window: tuple[int, int, int]
    params: LAMParams
    batch_size: int
    nan_steps: int
    crop: CropInfo
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures and parameters (no tensors)."""
        h, w, size = self.window
        return {"di": self.di, "di_per_frame": [float(v) for v in self.di_per_frame],
                "frame_share": [float(v) for v in self.frame_share], "frame": self.frame, "scale": self.scale,
                "h": h, "w": w, "window_size": size, **self.params.defining(), "batch_size": self.batch_size,
                "nan_steps": self.nan_steps, "crop": self.crop.summary(), "frames": int(self.attribution.shape[0])}


class FramesAsChannels(nn.Module):
    """A video model seen as an image model: [B,T·C,H,W] -> its output frame [B,C',sH,sW]."""

    def __init__(self, model: nn.Module, frames: int, channels: int, frame: int | None):
        super().__init__()
        self.model, self.frames, self.channels, self.frame = model, frames, channels, frame

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x.reshape(x.shape[0], self.frames, self.channels, *x.shape[-2:]))
        return y[:, self.frame] if self.frame is not None else y


# One wrapper per (model, T, C, frame), so the reach measured on it is kept as for image models.
_WRAPPERS: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def _clip(clip: Any) -> torch.Tensor:
    if not isinstance(clip, torch.Tensor) or clip.dim() != 4 or min(clip.shape) < 1:
        raise LAMError(f"clip must be a tensor [T,C,H,W], got {getattr(clip, 'shape', type(clip).__name__)}",
                       param="clip")
    return clip


def output_frame(model: nn.Module, clip: torch.Tensor, frame: int | None, device=None) -> int | None:
    """The output frame to attribute: ``frame`` checked against one forward of the clip, or the default.

    Raises:
        LAMError: the model refuses the clip, returns neither form, ``frame`` is out of range, or
            ``frame`` is given for a model with one output frame.
    """
    from lamfast.lam.srmodel import model_dtype
    from lamfast.modelstate import model_device

    T = clip.shape[0]
    dev = torch.device(device) if device is not None else model_device(model)
    x = clip.detach()[None].to(dev, model_dtype(model)).clone()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            y = model(x)
    except Exception as exc:  # noqa: BLE001 - the user's model, said in one line
        raise LAMError(f"the model failed on the clip [1,{T},{clip.shape[1]},{clip.shape[2]},{clip.shape[3]}] "
                       f"({type(exc).__name__}: {first_line(exc)})", param="model") from None
    finally:
        model.train(was_training)
    if not isinstance(y, torch.Tensor) or y.dim() not in (4, 5) or y.shape[0] != 1:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise LAMError(f"a video model must return [B,T,C,sH,sW] or [B,C,sH,sW], got {shape}", param="model")
    if y.dim() == 4:
        if frame is not None:
            raise LAMError(f"frame={frame} was given, but the model returns one output frame", param="frame")
        return None
    frames = y.shape[1]
    if frame is None:
        return math.ceil(frames / 2) - 1
    if isinstance(frame, bool) or not isinstance(frame, int) or not -frames <= frame < frames:
        raise LAMError(f"frame must be an output frame index in [0, {frames}), got {frame!r}", param="frame")
    return frame % frames


def lam_video_windows(model: nn.Module, clip: torch.Tensor, windows: Windows, *, frame: int | None = None,
                      window_size: int = 16, params: LAMParams | None = None, fold: int = 50, sigma: float = 1.2,
                      l: int = 9, batch_size: int | None = None, mode: str = "compat",
                      device: str | torch.device | None = None, progress: bool = False, errors: str = "raise",
                      crop: str | int = "auto", path: str = "blur", objective: Any = "grad", reduce: str = "sum",
                      baseline: str = "zero") -> list[VideoLAMResult | LAMError]:
    """LAM for K windows of one output frame of a clip; each equals :func:`lam_video` for its window.

    Args:
        model: [B,T,C,H,W] -> [B,T,C',sH,sW] or [B,C',sH,sW] (see the module docstring).
        clip: [T,C,H,W] float in [0,1].
        windows, window_size, params, fold, sigma, l, batch_size, mode, device, progress, errors,
            crop, path, objective, reduce, baseline: as :func:`lamfast.lam_windows`; windows are on
            the output frame, in SR pixels. Every path is applied to every frame alike (a straight
            line's baseline frame by frame); an objective function gets the output frame's window.
        frame: the output frame whose windows are attributed (default the middle one; None for a
            centre-frame model).
    Returns:
        One VideoLAMResult (or LAMError, with ``errors="return"``) per window.
    """
    clip = _clip(clip)
    T, C, H, W = clip.shape
    frame = output_frame(model, clip, frame, device)
    per_model = _WRAPPERS.setdefault(model, {})
    wrapper = per_model.setdefault((T, C, frame), FramesAsChannels(model, T, C, frame))
    results = lam_windows(wrapper, clip.reshape(T * C, H, W), windows, window_size=window_size, fold=fold,
                          sigma=sigma, l=l, batch_size=batch_size, mode=mode, device=device, progress=progress,
                          errors=errors, crop=crop, path=path, objective=objective, reduce=reduce,
                          baseline=baseline, params=params)
    return [r if isinstance(r, LAMError) else _video_result(r, T, C, frame) for r in results]


def lam_video(model: nn.Module, clip: torch.Tensor, h: int, w: int, window_size: int = 16, *,
              frame: int | None = None, fold: int = 50, sigma: float = 1.2, l: int = 9, batch_size: int | None = None,
              mode: str = "compat", device: str | torch.device | None = None, progress: bool = False,
              crop: str | int = "auto", path: str = "blur", objective: Any = "grad", reduce: str = "sum",
              baseline: str = "zero") -> VideoLAMResult:
    """Local Attribution Map of one window (h, w, window_size, SR pixels) of one output frame of a clip.

    Same path, objective and modes as :func:`lamfast.lam`, over every frame of ``clip`` [T,C,H,W];
    see :func:`lam_video_windows` for the arguments.

    Raises:
        LAMError: a clip the model refuses, a ``frame`` out of range or given for a one-frame output,
            a window outside the output, and every error :func:`lamfast.lam` raises.
    """
    (result,) = lam_video_windows(model, clip, [(h, w, window_size)], frame=frame, fold=fold, sigma=sigma, l=l,
                                  batch_size=batch_size, mode=mode, device=device, progress=progress, crop=crop,
                                  path=path, objective=objective, reduce=reduce, baseline=baseline)
    return result  # type: ignore[return-value]


def _video_result(r, T: int, C: int, frame: int | None) -> VideoLAMResult:
    attribution = r.attribution.reshape(T, C, *r.attribution.shape[-2:])
    grad = attribution.sum(dim=1).abs()  # [T,H,W]
    saliency = grad / grad.max()  # the engine has refused an all-zero attribution
    per_frame = grad / grad.flatten(1).amax(dim=1).clamp_min(torch.finfo(grad.dtype).tiny)[:, None, None]
    share = saliency.flatten(1).sum(dim=1)
    return VideoLAMResult(
        attribution=attribution, saliency=saliency, frame_share=share / share.sum(),
        di=float(diffusion_index(saliency.reshape(T * saliency.shape[1], saliency.shape[2]))),
        di_per_frame=diffusion_index(per_frame), frame=frame, sr=r.sr, scale=r.scale, window=r.window,
        params=r.params, batch_size=r.batch_size, nan_steps=r.nan_steps, crop=r.crop, timings=r.timings)


__all__ = ["FramesAsChannels", "VideoLAMResult", "lam_video", "lam_video_windows", "output_frame"]
