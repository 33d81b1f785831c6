"""What LAM needs of an SR model and its input: checks, dtype, scale."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lamfast.errors import first_line
from lamfast.lam.errors import LAMError
from lamfast.modelstate import attribution_state, model_device


def model_dtype(model: nn.Module) -> torch.dtype:
    """The model's floating dtype (of its first floating parameter or buffer; float32 if none)."""
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def input_channels(model: nn.Module) -> int | None:
    """The input channels of the model's first convolution (its first Conv module), or None without one."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)):
            return int(module.in_channels)
    return None


def prepare_image(model: nn.Module, image: Any, device: str | torch.device | None) -> torch.Tensor:
    """Move the model if asked; the image as [C,H,W] on its device, in its dtype.

    Any channel count the model takes (1 for grayscale or Y-channel models,
    3 for RGB, more for multi-band images).

    Raises:
        LAMError: not a float image tensor, or not finite.
    """
    if device is not None:
        model.to(device)
    if not isinstance(image, torch.Tensor):
        raise LAMError(f"image must be a torch.Tensor, got {type(image).__name__}", param="image")
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] < 1:
        raise LAMError(f"image must be a tensor [C,H,W] or [1,C,H,W], got shape {tuple(image.shape)}",
                       param="image")
    if not image.is_floating_point():
        raise LAMError(f"image must be a float tensor in [0,1], got {image.dtype}", param="image")
    if not bool(torch.isfinite(image).all()):
        raise LAMError("image contains NaN or inf", param="image")
    dtype = model_dtype(model)
    if dtype not in (torch.float32, torch.float64):
        # Half precision rounds the path's small steps and the objective's
        # differences away: the gradients come back NaN or zero.
        raise LAMError(f"the model runs in {dtype}; LAM needs float32 or float64 (use model.float())", param="model")
    return image.detach().to(device=model_device(model), dtype=model_dtype(model))


def check_output(sr: Any, lr_shape: tuple[int, int]) -> int:
    """Validate the model's output [1,C',sH,sW] for an LR input of ``lr_shape``; return the scale s.

    The output may have any channel count: the objective sums over them, as the official one does.
    """
    H, W = lr_shape
    if not isinstance(sr, torch.Tensor) or sr.dim() != 4 or sr.shape[0] != 1 or sr.shape[1] < 1:
        shape = tuple(sr.shape) if isinstance(sr, torch.Tensor) else type(sr).__name__
        raise LAMError(f"model must return a tensor [B,C,sH,sW] for input [1,C,{H},{W}], got {shape}", param="model")
    sH, sW = sr.shape[-2:]
    if sH % H or sW % W or sH // H != sW // W or sH < H:
        raise LAMError(
            f"model output {sH}x{sW} is not an integer multiple of the input {H}x{W}: not an SR model for this input",
            param="model",
        )
    if not bool(torch.isfinite(sr).all()):
        raise LAMError("model returned NaN or inf for the input image", param="model")
    return sH // H


def infer_scale(model: nn.Module, device: str | torch.device | None = None, sample: torch.Tensor | None = None) -> int:
    """The SR factor of ``model`` from one forward (model state restored).

    Args:
        sample: [C,h,w] the input to try, e.g. (a corner of) the user's own
            image, so errors are about it; default a 24x24 random image with
            the input channels of the model's first convolution (3 if it has none).
    Raises:
        LAMError (``param="model"``): the model fails on it or is not an SR model for it.
    """
    dev = torch.device(device) if device is not None else model_device(model)
    if sample is None:
        sample = torch.rand(input_channels(model) or 3, 24, 24, generator=torch.Generator().manual_seed(0))
    x = sample.detach()[None].to(dev, model_dtype(model)).clone()
    h, w = x.shape[-2:]
    with attribution_state(model), torch.no_grad():
        try:
            y = model(x)
        except Exception as exc:  # noqa: BLE001 - any failure of the user's model, said in one line
            first = first_line(exc)
            raise LAMError(f"the model failed on a {h}x{w} input ({type(exc).__name__}: {first})",
                           param="model") from None
        return check_output(y, (h, w))
