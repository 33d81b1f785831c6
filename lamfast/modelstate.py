"""The user's model as lamfast touches it: attribution state for one call and back, its device
and dtype, calling it with one-line failures, and exact float32 for checks.

The user's model is theirs: no call moves it, casts it or leaves it changed.
Inputs go to the model's device and dtype; :func:`model_device` names it, and
:func:`check_device` refuses a ``device=`` that disagrees.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn

from lamfast.errors import LAMError, first_line


@contextlib.contextmanager
def attribution_state(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and frozen parameters for the duration of the block.

    Weight gradients are pure waste in attribution (about 30 % of the
    official LAM time): with parameters frozen, autograd only builds what
    the input gradient needs. Training flags and ``requires_grad`` of every
    module and parameter are restored afterwards, even on error.
    """
    training = {m: m.training for m in model.modules()}
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, was_training in training.items():
            m.train(was_training)


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a stateless model)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    """The model's floating dtype (of its first floating parameter or buffer; float32 if none)."""
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if a.type != "cuda" or a.index == b.index:
        return True
    current = torch.cuda.current_device() if torch.cuda.is_available() else 0
    return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)


def check_device(model: nn.Module, device: Any) -> torch.device:
    """Where a call runs: the model's device; ``device`` (if given) must name the same one.

    A model without parameters or buffers has no device of its own and runs
    where ``device`` says (default the CPU).

    Raises:
        LAMError (``param="device"``): a device that is not the model's; lamfast never moves the model.
    """
    if device is None:
        return model_device(model)
    try:
        wanted = torch.device(device)
    except (RuntimeError, TypeError):
        raise LAMError(f"device must be a torch device or its name, got {device!r}", param="device") from None
    if next(iter((*model.parameters(), *model.buffers())), None) is None:
        return wanted
    own = model_device(model)
    if not _same_device(wanted, own):
        raise LAMError(f"device={str(device)!r}, but the model is on {own}; lamfast never moves your model: move "
                       f"it yourself (model.to({str(device)!r})) or leave device out", param="device")
    return own


def call_model(model: Any, x: torch.Tensor, what: str) -> Any:
    """``model(x)``; any failure of the user's model becomes one LAMError line naming ``what`` it ran on.

    Raises:
        LAMError (``param="model"``).
    """
    try:
        return model(x)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model, said in one line
        raise LAMError(f"the model failed on {what} ({type(exc).__name__}: {first_line(exc)})",
                       param="model") from None


def tf32_active(t: torch.Tensor) -> bool:
    """Whether float32 model ops on ``t``'s device may run in TF32 now (CUDA with
    PyTorch's default ``cudnn.allow_tf32`` or the matmul flag set)."""
    return t.is_cuda and t.dtype == torch.float32 and (
        torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32)


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """TF32 off for cuDNN convolutions and matmuls inside the block, restored after.

    For the model runs that answer questions about the model rather than
    compute the attribution: the crop's reach probe and its check against
    the whole image. TF32 keeps 10 mantissa bits, so a crop and the whole
    image differ by ~1e-4 through rounding alone (measured on an H100,
    EDSR-baseline), which would hide or fake the structural differences
    the check exists to find. The attribution itself keeps PyTorch's
    defaults. (These are process-wide flags, as PyTorch defines them.)
    """
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = saved
