"""``path_accumulate``: the integral step LAM, IG and BlurIG share.

Kernels: CPU in ``csrc/cpu/path_accumulate_cpu.cpp`` and CUDA in
``csrc/cuda/path_accumulate_cuda.cu`` (built where torch has CUDA). Without the
extension, and on any other device, the pure-torch twin :func:`path_accumulate_torch`
below runs instead; it is also the test oracle.
"""
from __future__ import annotations

import torch

from lamfast.errors import LamfastError
from lamfast.ops import _library

NAME = "path_accumulate"


def check_args(acc: torch.Tensor, grads: torch.Tensor, deriv: torch.Tensor) -> None:
    """Raise LamfastError for anything the op refuses."""
    for name, t in (("acc", acc), ("grads", grads), ("deriv", deriv)):
        if not isinstance(t, torch.Tensor):
            raise LamfastError(f"path_accumulate: {name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise LamfastError(f"path_accumulate: {name} must be a floating tensor, got {t.dtype}")
    if acc.dtype not in (torch.float32, torch.float64):
        raise LamfastError(f"path_accumulate: acc must be float32 or float64, got {acc.dtype}")
    if acc.dim() < 3:
        raise LamfastError(f"path_accumulate: acc must be [*lead, C, H, W], got shape {tuple(acc.shape)}")
    if grads.shape != deriv.shape:
        raise LamfastError(
            f"path_accumulate: grads {tuple(grads.shape)} and deriv {tuple(deriv.shape)} must have the same shape"
        )
    step_dim = grads.dim() - 4
    expected = grads.shape[:step_dim] + grads.shape[step_dim + 1 :] if grads.dim() >= 4 else None
    if grads.dim() != acc.dim() + 1 or tuple(expected) != tuple(acc.shape):
        raise LamfastError(
            f"path_accumulate: grads must be [*lead, S, C, H, W] for acc [*lead, C, H, W] = {tuple(acc.shape)}, "
            f"got {tuple(grads.shape)}"
        )
    if not (acc.device == grads.device == deriv.device):
        raise LamfastError(
            f"path_accumulate: acc, grads and deriv must be on one device, got {acc.device}, {grads.device}, {deriv.device}"
        )


def _kernel_checks(acc: torch.Tensor, grads: torch.Tensor, deriv: torch.Tensor) -> None:
    # What the kernels (the C++ op_checks.h, this twin) and the fake refuse, for direct torch.ops calls.
    torch._check_value(acc.dtype in (torch.float32, torch.float64),
                       lambda: f"path_accumulate: acc must be float32 or float64, got {acc.dtype}")
    torch._check_value(grads.is_floating_point() and deriv.is_floating_point(),
                       lambda: "path_accumulate: grads and deriv must be floating tensors")
    torch._check_value(acc.dim() >= 3, lambda: f"path_accumulate: acc must be [*lead, C, H, W], got {acc.dim()} dims")
    torch._check_value(grads.shape == deriv.shape, lambda: f"path_accumulate: grads {tuple(grads.shape)} and deriv "
                                                           f"{tuple(deriv.shape)} must have the same shape")
    step = grads.dim() - 4
    torch._check_value(grads.dim() == acc.dim() + 1
                       and tuple(grads.shape[:step]) + tuple(grads.shape[step + 1:]) == tuple(acc.shape),
                       lambda: f"path_accumulate: grads must be [*lead, S, C, H, W] for acc [*lead, C, H, W] = "
                               f"{tuple(acc.shape)}, got {tuple(grads.shape)}")


def path_accumulate_torch(acc: torch.Tensor, grads: torch.Tensor, deriv: torch.Tensor) -> None:
    """Pure-torch twin: ``acc += (grads * deriv).sum(step dim)`` in acc's dtype.

    Example:
        >>> import torch
        >>> from lamfast.ops import path_accumulate_torch
        >>> acc = torch.zeros(3, 4, 4)
        >>> path_accumulate_torch(acc, torch.ones(5, 3, 4, 4), torch.full((5, 3, 4, 4), 0.5))
        >>> float(acc.max())
        2.5
    """
    _kernel_checks(acc, grads, deriv)
    step_dim = grads.dim() - 4
    acc.add_((grads.to(acc.dtype) * deriv.to(acc.dtype)).sum(dim=step_dim))


def _fake(acc, grads, deriv):
    _kernel_checks(acc, grads, deriv)


torch.library.register_fake(_library.qualname(NAME), _fake)
_library.register_twin(NAME, path_accumulate_torch)


def path_accumulate(acc: torch.Tensor, grads: torch.Tensor, deriv: torch.Tensor) -> torch.Tensor:
    """``acc += sum_j grads_j * deriv_j``, in place, accumulated in acc's dtype.

    Lets a caller integrate a path chunk by chunk without keeping every
    gradient. Not differentiable (it runs without autograd).

    Args:
        acc: [*lead, C, H, W] float32/float64 accumulator, updated in place.
        grads: [*lead, S, C, H, W] gradients at S path points (any float dtype).
        deriv: same shape as grads, the path derivative at those points.
    Returns:
        acc.
    Raises:
        LamfastError: dtypes or shapes that do not fit (nothing is broadcast).

    Example:
        >>> import torch, lamfast
        >>> acc = torch.zeros(3, 4, 4)
        >>> lamfast.path_accumulate(acc, torch.ones(5, 3, 4, 4), torch.full((5, 3, 4, 4), 0.5)).max()
        tensor(2.5000)
    """
    check_args(acc, grads, deriv)
    with torch.no_grad():
        torch.ops.lamfast.path_accumulate(acc, grads.detach(), deriv.detach())
    return acc
