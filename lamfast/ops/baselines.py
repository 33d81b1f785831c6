"""The plain-torch formulations each op is measured against.

Besides each op's twin (which follows the kernel's algorithm), these are the
fastest ways found to get the same numbers with torch alone. ``lamfast
selfcheck`` and ``benchmarks/test_bench_ext.py`` time every op against its
twin and these, and report the fastest that agrees within the op's
tolerance.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from lamfast.gaussian import reflect101_index
from lamfast.ops.blur_path import blur_path_torch, step_taps
from lamfast.ops.kde_map import kde_map_torch
from lamfast.ops.lam_objective import lam_objective_torch
from lamfast.ops.path_accumulate import path_accumulate_torch

from lamfast.errors import LamfastError


def blur_path_conv2d(image: torch.Tensor, fold: int = 50, sigma: float = 1.2, l: int = 9):
    """The path with full l x l kernels in the image's dtype: one conv2d of
    2·fold kernels (``k_j`` and ``fold·(k_j - k_{j-1})``, built in float64).

    Args:
        image: [C,H,W].
    Returns:
        (path, deriv), each [fold,C,H,W].
    """
    C, H, W = image.shape
    pad = l // 2
    taps = step_taps(fold, sigma, l, image.device)
    k2 = taps[:, :, None] * taps[:, None, :]  # [fold+1, l, l]
    kernels = torch.cat([k2[1:], (k2[1:] - k2[:-1]) * fold]).to(image.dtype)[:, None]
    planes = image.reshape(C, 1, H, W)
    planes = planes.index_select(3, reflect101_index(W, pad, image.device))
    planes = planes.index_select(2, reflect101_index(H, pad, image.device))
    out = F.conv2d(planes, kernels).transpose(0, 1).contiguous()  # [2 fold, C, H, W]
    return out[:fold], out[fold:]


def accumulate_addcmul(acc: torch.Tensor, grads: torch.Tensor, deriv: torch.Tensor) -> None:
    """``acc += Σ_s grads[s] * deriv[s]`` for grads [S,C,H,W]: in-place
    addcmul_ per step, no [S,C,H,W] temporary."""
    for s in range(grads.shape[0]):
        acc.addcmul_(grads[s], deriv[s])


def objective_diff(y: torch.Tensor, windows, robust: bool = False) -> torch.Tensor:
    """Compat objective of one window shared by all outputs (the first triple of
    ``windows``) with torch.diff: [N,C,sH,sW] -> [1, N]."""
    if robust:
        raise LamfastError("objective_diff: compat only")
    dh = torch.diff(y, dim=2)[:, :, :, :-1]
    dw = torch.diff(y, dim=3)[:, :, :-1, :]
    g = (dh * dh + dw * dw).sqrt()
    h, w, s = windows[:3]
    return g[:, :, h : h + s, w : w + s].sum(dim=(1, 2, 3))[None]


def objective_fwd_bwd(objective: Callable, y: torch.Tensor, windows) -> Callable[[], torch.Tensor]:
    """A call of objective(y) and its input gradient, as a LAM path chunk needs."""

    def run() -> torch.Tensor:
        leaf = y.detach().requires_grad_(True)
        value = objective(leaf, windows, False)
        value = value[0] if isinstance(value, tuple) else value
        return torch.autograd.grad(value.sum(), leaf)[0]

    return run


def _with_acc(fn: Callable, acc: torch.Tensor, grads: torch.Tensor, deriv: torch.Tensor) -> Callable[[], torch.Tensor]:
    def run() -> torch.Tensor:
        out = acc.clone()
        fn(out, grads, deriv)
        return out

    return run


def op_contenders(op: str, **data) -> tuple[Callable[[], object], dict[str, Callable[[], object]]]:
    """(compiled op call, {baseline name: call}) on ``data`` for one op.

    ``blur_path``: image, fold; ``path_accumulate``: acc, grads, deriv;
    ``kde_map``: saliency; ``lam_objective``: y, windows (flat), timed with
    its backward.
    """
    if op == "blur_path":
        image, fold = data["image"], data["fold"]
        return (lambda: torch.ops.lamfast.blur_path(image, fold, 1.2, 9),
                {"twin (float64 separable conv)": lambda: blur_path_torch(image, fold),
                 "conv2d l x l": lambda: blur_path_conv2d(image, fold)})
    if op == "path_accumulate":
        args = data["acc"], data["grads"], data["deriv"]
        return (_with_acc(torch.ops.lamfast.path_accumulate, *args),
                {"twin ((g*d).sum)": _with_acc(path_accumulate_torch, *args),
                 "addcmul_ loop": _with_acc(accumulate_addcmul, *args)})
    if op == "kde_map":
        sal = data["saliency"]
        return lambda: torch.ops.lamfast.kde_map(sal), {"twin (float64 FFT)": lambda: kde_map_torch(sal)}
    if op == "lam_objective":
        y, windows = data["y"], data["windows"]
        return (objective_fwd_bwd(lambda t, w, r: torch.ops.lamfast.lam_objective(t, w, r), y, windows),
                {"twin (official formulation)": objective_fwd_bwd(lam_objective_torch, y, windows),
                 "torch.diff": objective_fwd_bwd(objective_diff, y, windows)})
    raise LamfastError(f"op_contenders: unknown op {op!r}")
