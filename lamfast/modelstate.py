"""Putting a model into attribution state for one call, and back; exact float32 for checks."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn


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
