"""The user's SR model as the LAM engine calls it: :class:`SRForward`, and the input it gets.

An image [C,H,W] runs through the model as it is. A clip [T,C,H,W] runs
through a video model as one image of T·C channels: the model gets
[B,T,C,H,W] and the engine gets the attributed output frame [B,C',sH,sW]
(``frame`` of a model that returns every frame, by default the middle one,
``ceil(T/2) - 1``; a centre-frame model returns one). So the path blurs
every frame with the same kernel at each step, exactly as it blurs each
channel of an image, and everything else (shared forwards, crops, their
check) is the image engine's.

A model whose descriptor states size requirements gets its input padded up
to them, as spandrel pads, and its output cut back to the input's size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from lamfast.descriptor import ModelDescriptor, SizeRequirements, first_convolution, module_of, output_scale, size_of
from lamfast.errors import LAMError
from lamfast.modelstate import call_model, check_device, model_dtype


@dataclass(frozen=True, eq=False)
class SRForward:
    """How the engine calls the user's model: LR images [N,C,H,W] -> SR [N,C',sH,sW].

    Attributes:
        model: the user's module (never moved, cast or changed).
        frames, channels: T and C of a clip (None for an image): the engine's C is T·C.
        frame: the output frame of a model that returns every frame (None: its one output frame).
        size: the model's size requirements; inputs are padded up to them.
    """

    model: nn.Module
    frames: int | None = None
    channels: int | None = None
    frame: int | None = None
    size: SizeRequirements = SizeRequirements()

    @property
    def view(self) -> tuple:
        """What, besides the module, decides the function the engine sees (for caches); () where it is the
        module itself."""
        if not self.is_clip and self.size.none:
            return ()
        return (self.frames, self.channels, self.frame, self.size)

    @property
    def is_clip(self) -> bool:
        return self.frames is not None

    def _raw(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_clip:
            x = x.reshape(x.shape[0], self.frames, self.channels, *x.shape[-2:])
        return self.model(x)

    def _cut(self, y: torch.Tensor, lr_shape: tuple[int, int], padded: tuple[int, int]) -> torch.Tensor:
        if padded == lr_shape or not isinstance(y, torch.Tensor) or y.dim() < 2:
            return y
        s = y.shape[-1] // padded[1]
        return y[..., :lr_shape[0] * s, :lr_shape[1] * s]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        lr_shape = tuple(x.shape[-2:])
        xp = self.size.pad(x)
        y = self._cut(self._raw(xp), lr_shape, tuple(xp.shape[-2:]))
        return y[:, self.frame] if self.frame is not None else y

    def first(self, x: torch.Tensor) -> tuple["SRForward", torch.Tensor]:
        """The first forward of the whole input [1,C,H,W] (no grad): this forward with a clip's output
        frame resolved, and the output [1,C',sH,sW] with the scale checked.

        Raises:
            LAMError: the model fails, returns no SR image of the input, or (clips) ``frame`` is out
                of range or given for a model with one output frame.
        """
        H, W = x.shape[-2:]
        shape = f"the clip [1,{self.frames},{self.channels},{H},{W}]" if self.is_clip else f"the {H}x{W} input image"
        xp = self.size.pad(x)
        try:
            y = call_model(self._raw, xp, shape)
        except LAMError as exc:
            hint = ("; a [T,C,H,W] input is a clip for a video model (give an image as [C,H,W])" if self.is_clip
                    else failure_hint(self.model, x.shape[1]))
            raise LAMError(f"{exc}{hint}", param="model") from None
        y = self._cut(y, (H, W), tuple(xp.shape[-2:]))
        fwd = self
        if self.is_clip:
            fwd = replace(self, frame=_output_frame(y, self.frame))
            y = y[:, fwd.frame] if fwd.frame is not None else y
        elif isinstance(y, torch.Tensor) and y.dim() == 5:
            raise LAMError(f"the model returned {tuple(y.shape)} for an image: a video model takes a clip "
                           "[T,C,H,W]", param="model")
        output_scale(y, (H, W))
        return fwd, y


def _output_frame(y: Any, frame: int | None) -> int | None:
    """The output frame of a clip model's output ``y`` (see the module docstring)."""
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


def lam_input(model: "nn.Module | ModelDescriptor", image: Any, frame: int | None,
              device: Any) -> tuple[SRForward, torch.Tensor]:
    """The engine's forward and input for ``image``: [C,H,W] (an image) or [T,C,H,W] (a clip).

    Returns:
        (SRForward, the input [C,H,W] or [T·C,H,W] on the model's device, in its dtype).
    Raises:
        LAMError: not a finite float tensor of 3 or 4 dims, ``frame`` for an image, a model in
            half precision, or a ``device`` that is not the model's.
    """
    module = module_of(model)
    if not isinstance(module, nn.Module):
        raise LAMError(f"model must be an nn.Module or a lamfast ModelDescriptor, got {type(model).__name__}",
                       param="model")
    dev = check_device(module, device)
    if not isinstance(image, torch.Tensor):
        raise LAMError(f"image must be a torch.Tensor, got {type(image).__name__}", param="image")
    if image.dim() not in (3, 4) or min(image.shape) < 1:
        raise LAMError(f"image must be an image [C,H,W] or a clip [T,C,H,W], got shape {tuple(image.shape)}",
                       param="image")
    if not image.is_floating_point():
        raise LAMError(f"image must be a float tensor in [0,1], got {image.dtype}", param="image")
    if not bool(torch.isfinite(image).all()):
        raise LAMError("image contains NaN or inf", param="image")
    dtype = model_dtype(module)
    if dtype not in (torch.float32, torch.float64):
        # Half precision rounds the path's small steps and the objective's
        # differences away: the gradients come back NaN or zero.
        raise LAMError(f"the model runs in {dtype}; LAM needs float32 or float64 (use model.float())", param="model")
    size = size_of(model)
    if image.dim() == 3:
        if frame is not None:
            raise LAMError(f"frame={frame} picks an output frame of a clip [T,C,H,W]; the image is [C,H,W]",
                           param="frame")
        return SRForward(module, size=size), image.detach().to(dev, dtype)
    T, C, H, W = image.shape
    return SRForward(module, T, C, frame, size), image.detach().reshape(T * C, H, W).to(dev, dtype)


def sr_output(model: "nn.Module | ModelDescriptor", image: torch.Tensor, frame: int | None = None,
              device: Any = None) -> torch.Tensor:
    """The model's output [C',sH,sW] for an image [C,H,W] or a clip [T,C,H,W], as LAM runs it (size
    requirements honoured; a clip's attributed frame), without gradients.

    Example:
        >>> import lamfast
        >>> from lamfast.request import prepare_input
        >>> model = lamfast.load_model()
        >>> tuple(lamfast.lam.srmodel.sr_output(model, prepare_input(model, "bundled").tensor()).shape)
        (3, 256, 256)
    """
    from lamfast.modelstate import attribution_state

    fwd, x = lam_input(model, image, frame, device)
    with attribution_state(fwd.model), torch.no_grad():
        return fwd.first(x[None].clone())[1][0]


def failure_hint(model: nn.Module, channels: int) -> str:
    """Why a model may have failed on an input of ``channels``: the channels its first convolution takes."""
    takes = first_convolution(model)
    return (f"; the input has {channels} channels, the model's first convolution takes {takes}"
            if takes is not None and takes != channels else "")


def infer_scale(model: "nn.Module | ModelDescriptor", device: str | torch.device | None = None,
                sample: torch.Tensor | None = None) -> int:
    """The SR factor of ``model`` (a descriptor's own, else from one forward; model state restored).

    Args:
        sample: [C,h,w] the input to try, e.g. (a corner of) the user's own image, so errors are
            about it; default a 24x24 random image with the input channels of the first
            convolution the model runs (3 if none runs).
    Raises:
        LAMError (``param="model"``): the model fails on it or is not an SR model for it.

    Example:
        >>> import lamfast
        >>> lamfast.lam.infer_scale(lamfast.load_model().model)
        4
    """
    from lamfast.descriptor import describe

    if isinstance(model, ModelDescriptor) and model.scale is not None:
        return model.scale
    check_device(module_of(model), device)
    return describe(module_of(model), size_of(model), sample=sample).scale


__all__ = ["SRForward", "failure_hint", "infer_scale", "lam_input", "sr_output"]
