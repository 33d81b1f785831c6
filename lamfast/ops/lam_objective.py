"""``lam_objective``: LAM's objective (the official ``attr_grad``) and its exact ties, fused.

For SR outputs ``y`` [N,C,sH,sW]: ``hg = (y[:,:,:-1,:] - y[:,:,1:,:])²``,
``wg = (y[:,:,:,:-1] - y[:,:,:,1:])²``, ``sq = hg[:,:,:,:-1] + wg[:,:,:-1,:]``
[N,C,sH-1,sW-1], ``G = sqrt(sq)``, and window ``(h, w, size)``'s value is the
sum of ``G[:, :, h:h+size, w:w+size]`` over channels (the window clipped to
G, as slicing does). ``robust`` takes ``G = 0`` where ``sq`` is not > 0, with
a zero subgradient there; compat keeps the official NaN gradients (0 · inf
in sqrt's backward where ``sq`` is exactly 0). ``ties[n]`` says whether ``sq``
of output n is exactly 0 anywhere: the outputs whose compat gradient has NaN.

Kernels: CPU in ``csrc/cpu/lam_objective_cpu.cpp``, one pass per plane
forward and backward instead of torch's dozen whole-tensor passes. There is
no CUDA kernel: on the GPU the objective is a small share of a path's time,
and the dispatcher runs the torch formulation (:func:`lam_objective_torch`,
also the test oracle) there, as it does without the extension. The kernel
rounds ``sq`` as torch does, so ``ties`` and the NaN pattern of the
gradient are torch's exactly; sums agree to rounding. The op takes float32
and float64 (the dtypes LAM runs in).

:func:`squared_gradient`, :func:`sqrt_zero_subgradient`, :func:`window_source`,
:func:`window_value` and :func:`exact_ties` are the formulation itself, in
torch: the twin is built from them, and LAM's official mode uses them
directly, summing as the official code does.
"""
from __future__ import annotations

from typing import Sequence

import torch

from lamfast.errors import LamfastError
from lamfast.ops import _library

NAME = "lam_objective"
BACKWARD = "lam_objective_backward"
Window = tuple[int, int, int]
DTYPES = (torch.float32, torch.float64)


def check_args(y: torch.Tensor, windows: Sequence[int]) -> int:
    """Raise LamfastError for what the op refuses; return K, the windows per output."""
    if not isinstance(y, torch.Tensor):
        raise LamfastError(f"lam_objective: y must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() != 4 or y.dtype not in DTYPES:
        raise LamfastError(f"lam_objective: y must be a float32 or float64 [N, C, sH, sW] tensor, got {y.dtype} "
                           f"{tuple(y.shape)}")
    N = y.shape[0]
    if N < 1 or y.shape[2] < 1 or y.shape[3] < 1:
        raise LamfastError(f"lam_objective: y must have N, sH, sW >= 1, got {tuple(y.shape)}")
    n = len(windows)
    if n < 3 * N or n % (3 * N):
        raise LamfastError(f"lam_objective: windows must hold (h, w, size) for K >= 1 windows of each of the "
                         f"{N} outputs, got {n} numbers")
    for i in range(0, n, 3):
        h, w, s = windows[i : i + 3]
        if h < 0 or w < 0 or s < 1:
            raise LamfastError(f"lam_objective: a window needs h, w >= 0 and size >= 1, got ({h}, {w}, {s})")
    return n // (3 * N)


def _kernel_checks(y: torch.Tensor, windows: Sequence[int]) -> int:
    # What the kernels (the C++ op_checks.h, the twins) and the fakes refuse, for direct torch.ops calls;
    # returns K, the windows per output.
    torch._check_value(y.dim() == 4 and y.dtype in DTYPES,
                       lambda: f"lam_objective: y must be a float32 or float64 [N, C, sH, sW] tensor, got {y.dtype} "
                               f"{tuple(y.shape)}")
    N = y.shape[0]
    torch._check_value(N >= 1 and len(windows) >= 3 * N and len(windows) % (3 * N) == 0,
                       lambda: f"lam_objective: windows must hold (h, w, size) for K >= 1 windows of each of the {N} "
                               f"outputs, got {len(windows)} numbers")
    for i in range(0, len(windows), 3):
        h, w, s = windows[i:i + 3]
        torch._check_value(h >= 0 and w >= 0 and s >= 1, lambda: f"lam_objective: a window needs h, w >= 0 and size "
                                                                  f">= 1, got ({h}, {w}, {s})")
    return len(windows) // (3 * N)


def squared_gradient(y: torch.Tensor) -> torch.Tensor:
    """``hg[:,:,:,:-1] + wg[:,:,:-1,:]`` of outputs [N,C,sH,sW]: [N,C,sH-1,sW-1]."""
    hg = (y[:, :, :-1, :] - y[:, :, 1:, :]).pow(2)
    wg = (y[:, :, :, :-1] - y[:, :, :, 1:]).pow(2)
    return hg[:, :, :, :-1] + wg[:, :, :-1, :]


def sqrt_zero_subgradient(x: torch.Tensor) -> torch.Tensor:
    """sqrt whose gradient at 0 is 0 instead of inf (no NaN from 0 * inf)."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, torch.ones_like(x)).pow(0.5), torch.zeros_like(x))


def window_source(y: torch.Tensor, robust: bool) -> torch.Tensor:
    """What windows are cut from: ``sq`` (robust, sqrt after the cut) or ``G``."""
    sq = squared_gradient(y)
    return sq if robust else sq.pow(0.5)


def window_value(source: torch.Tensor, window: Window, robust: bool) -> torch.Tensor:
    """One window's value on every output of ``source`` [N,C,gH,gW]: [N]."""
    h, w, s = window
    part = source[:, :, h : h + s, w : w + s]
    if robust:
        part = sqrt_zero_subgradient(part)
    return part.sum(dim=(1, 2, 3))


def exact_ties(y: torch.Tensor) -> torch.Tensor:
    """[N] bool: outputs [N,C,sH,sW] with a zero squared gradient anywhere."""
    return (squared_gradient(y) == 0).flatten(1).any(dim=1)


def _per_output(windows: Sequence[int], K: int, N: int) -> list[list[Window]]:
    """The flat windows as [K][N] triples."""
    return [[tuple(windows[3 * (k * N + n) : 3 * (k * N + n) + 3]) for n in range(N)] for k in range(K)]


def lam_objective_torch(y: torch.Tensor, windows: Sequence[int], robust: bool = False):
    """Pure-torch twin of the op: the official formulation, windows cut from one source (arguments
    as the op's, checked by :func:`lam_objective`).

    Outputs that share a window are cut together, so K windows common to all
    N outputs cost K slices, as in the official code.

    Example:
        >>> import torch, lamfast
        >>> from lamfast.ops import lam_objective_torch
        >>> y = torch.rand(2, 3, 8, 8)
        >>> torch.allclose(lam_objective_torch(y, [1, 1, 4, 1, 1, 4])[0], lamfast.lam_objective(y, [(1, 1, 4)])[0])
        True
    """
    K = _kernel_checks(y, windows)
    N = y.shape[0]
    source = window_source(y, robust)
    rows = []
    for per in _per_output(windows, K, N):
        parts, a = [], 0
        while a < N:  # runs of outputs with one window
            b = a + 1
            while b < N and per[b] == per[a]:
                b += 1
            parts.append(window_value(source[a:b], per[a], robust))
            a = b
        rows.append(torch.cat(parts) if len(parts) > 1 else parts[0])
    return torch.stack(rows), exact_ties(y.detach())


def _window_gradient(grad: torch.Tensor, windows: Sequence[int], K: int, N: int, gH: int, gW: int) -> torch.Tensor:
    """gG [N,1,gH,gW]: each sq pixel's gradient, summed over the windows that hold it."""
    gg = grad.new_zeros(N, 1, gH, gW)
    for k, per in enumerate(_per_output(windows, K, N)):
        for n, (h, w, s) in enumerate(per):
            gg[n, 0, h : h + s, w : w + s] += grad[k, n]
    return gg


def lam_objective_backward_torch(grad: torch.Tensor, y: torch.Tensor, windows: Sequence[int], robust: bool = False):
    """Twin of the backward: the gradient w.r.t. ``y`` of ``(grad * value).sum()``.

    Written out as torch's autograd computes it through
    :func:`lam_objective_torch` (sqrt's backward ``g * (0.5 * sq^-0.5)``,
    then ``g * (2 d)`` for each square), so its NaN pattern is torch's. It
    runs below autograd (as a kernel), hence no autograd inside.
    """
    K = _kernel_checks(y, windows)
    N, _, sH, sW = y.shape
    torch._check_value(tuple(grad.shape) == (K, N), lambda: f"lam_objective_backward: grad must be [K, N] = [{K}, {N}], "
                                                            f"got {tuple(grad.shape)}")
    grad = grad.to(y.dtype)
    dh = y[:, :, :-1, :] - y[:, :, 1:, :]  # [N,C,sH-1,sW]
    dw = y[:, :, :, :-1] - y[:, :, :, 1:]  # [N,C,sH,sW-1]
    sq = dh[:, :, :, :-1].pow(2) + dw[:, :, :-1, :].pow(2)
    dsq = _window_gradient(grad, windows, K, N, sH - 1, sW - 1) * (0.5 * sq.rsqrt())
    if robust:
        dsq = torch.where(sq > 0, dsq, torch.zeros_like(dsq))
    # The slices that drop d_h's last column and d_w's last row pass a zero
    # gradient, which times a non-finite difference is NaN, as in torch.
    dd_h = torch.nn.functional.pad(dsq, (0, 1, 0, 0)) * (2 * dh)
    dd_w = torch.nn.functional.pad(dsq, (0, 0, 0, 1)) * (2 * dw)
    dy = torch.zeros_like(y)
    dy[:, :, :-1, :] += dd_h
    dy[:, :, 1:, :] -= dd_h
    dy[:, :, :, :-1] += dd_w
    dy[:, :, :, 1:] -= dd_w
    return dy


def _fake(y, windows, robust=False):
    K = _kernel_checks(y, windows)
    return y.new_empty(K, y.shape[0]), y.new_empty(y.shape[0], dtype=torch.bool)


def _fake_backward(grad, y, windows, robust=False):
    _kernel_checks(y, windows)
    return torch.empty_like(y)


def _setup_context(ctx, inputs, output):
    y, windows, robust = inputs
    ctx.save_for_backward(y)
    ctx.windows, ctx.robust = windows, robust


def _backward(ctx, grad_value, grad_ties):
    (y,) = ctx.saved_tensors
    return torch.ops.lamfast.lam_objective_backward(grad_value, y, ctx.windows, ctx.robust), None, None


torch.library.register_fake(_library.qualname(NAME), _fake)
torch.library.register_fake(_library.qualname(BACKWARD), _fake_backward)
_library.register_twin(NAME, lam_objective_torch)
_library.register_twin(BACKWARD, lam_objective_backward_torch)
torch.library.register_autograd(_library.qualname(NAME), _backward, setup_context=_setup_context)


def flat_windows(windows: Sequence, N: int) -> list[int]:
    """K windows, each one ``(h, w, size)`` for all N outputs or N of them, as the op's flat list
    (what ``torch.ops.lamfast.lam_objective`` takes)."""
    flat: list[int] = []
    for win in windows:
        if len(win) == 3 and not isinstance(win[0], (tuple, list)):
            flat.extend(int(v) for v in tuple(win) * N)
        else:
            if len(win) != N:
                raise LamfastError(f"lam_objective: a window list must have one window per output ({N}), got {len(win)}")
            for triple in win:
                flat.extend(int(v) for v in triple)
    return flat


def lam_objective(y: torch.Tensor, windows: Sequence, robust: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """LAM's objective of K windows on N outputs, and the outputs' exact ties.

    Differentiable w.r.t. ``y``.

    Args:
        y: [N,C,sH,sW] SR outputs.
        windows: K windows; each is one ``(h, w, size)`` (SR pixels) used on
            every output, or a sequence of N of them, one per output.
        robust: zero subgradient where the squared gradient is 0 (no NaN).
    Returns:
        (value [K,N] in y's dtype, ties [N] bool).
    Raises:
        LamfastError: shapes, dtypes or windows that do not fit.

    Example:
        >>> import torch, lamfast
        >>> y = torch.zeros(2, 3, 8, 8); y[1, :, 4:, :] = 1.0  # the second output has an edge
        >>> value, ties = lamfast.lam_objective(y, [(0, 0, 8)])
        >>> value.tolist(), ties.tolist()
        ([[0.0, 21.0]], [True, True])
    """
    flat = flat_windows(windows, y.shape[0] if isinstance(y, torch.Tensor) and y.dim() == 4 else 0)
    check_args(y, flat)
    return torch.ops.lamfast.lam_objective(y, flat, robust)
