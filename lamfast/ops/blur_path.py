"""``blur_path``: the official LAM Gaussian-blur path and its derivative.

Kernels: CPU in ``csrc/cpu/blur_path_cpu.cpp`` and CUDA in
``csrc/cuda/blur_path_cuda.cu`` (built where torch has CUDA). Without the
extension, and on any other device, the pure-torch twin :func:`blur_path_torch`
below runs instead; it is also the test oracle.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lamfast.errors import LamfastError
from lamfast.gaussian import gaussian_taps, reflect101_index
from lamfast.ops import _library

NAME = "blur_path"


def path_sigmas(sigma: float, fold: int) -> list[float]:
    """``numpy.linspace(sigma, 0, fold + 1)`` as numpy computes it: [fold+1]."""
    step = (0.0 - sigma) / fold
    return [sigma + j * step for j in range(fold)] + [0.0]


def check_args(image: torch.Tensor, fold, sigma, l) -> None:
    """Raise LamfastError, naming the argument, for anything the op refuses."""
    if not isinstance(image, torch.Tensor):
        raise LamfastError(f"blur_path: image must be a torch.Tensor, got {type(image).__name__}", param="image")
    if image.dim() not in (3, 4):
        raise LamfastError(f"blur_path: image must be [C,H,W] or [B,C,H,W], got shape {tuple(image.shape)}",
                           param="image")
    if not image.is_floating_point():
        raise LamfastError(f"blur_path: image must be a floating tensor, got {image.dtype}", param="image")
    if image.shape[-1] < 1 or image.shape[-2] < 1:
        raise LamfastError(f"blur_path: image must have H, W >= 1, got shape {tuple(image.shape)}", param="image")
    if isinstance(fold, bool) or not isinstance(fold, int) or fold < 1:
        raise LamfastError(f"blur_path: fold must be an integer >= 1, got {fold!r}", param="fold")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma >= 0 or math.isinf(sigma):
        raise LamfastError(f"blur_path: sigma must be a finite number >= 0, got {sigma!r}", param="sigma")
    if isinstance(l, bool) or not isinstance(l, int) or l < 1 or l % 2 == 0:
        raise LamfastError(f"blur_path: l must be an odd integer >= 1, got {l!r}", param="l")


def _kernel_checks(image: torch.Tensor, fold: int, sigma: float, l: int) -> None:
    # What the kernels (the C++ op_checks.h, this twin) and the fake refuse, for direct torch.ops calls.
    torch._check_value(image.dim() in (3, 4), lambda: f"blur_path: image must be [C,H,W] or [B,C,H,W], got "
                                                       f"{image.dim()} dims")
    torch._check_value(image.is_floating_point(), lambda: f"blur_path: image must be a floating tensor, got {image.dtype}")
    torch._check_value(fold >= 1, lambda: f"blur_path: fold must be >= 1, got {fold}")
    torch._check_value(math.isfinite(sigma) and sigma >= 0, lambda: f"blur_path: sigma must be a finite number >= 0, "
                                                                    f"got {sigma}")
    torch._check_value(l >= 1 and l % 2 == 1, lambda: f"blur_path: l must be an odd integer >= 1, got {l}")
    torch._check_value(image.shape[-1] >= 1 and image.shape[-2] >= 1, lambda: "blur_path: image must have H, W >= 1")


def step_taps(fold: int, sigma: float, l: int, device: torch.device) -> torch.Tensor:
    """Taps of every path step j = 0..fold, float64: [fold+1, l] (the op's definition, shared by its
    kernels, its twin, its backward and :mod:`lamfast.ops.baselines`)."""
    taps = [gaussian_taps(s, l) for s in path_sigmas(float(sigma), fold)]
    return torch.tensor(taps, dtype=torch.float64, device=device)


def blur_path_torch(image: torch.Tensor, fold: int = 50, sigma: float = 1.2, l: int = 9):
    """Pure-torch twin of the compiled kernel, same algorithm (double accumulation); it runs
    wherever no kernel does, and is the tests' oracle. Arguments as :func:`blur_path`.

    Args:
        image: [C,H,W] or [B,C,H,W] floating tensor.
    Returns:
        (path, deriv), each [fold,C,H,W] or [B,fold,C,H,W] in image's dtype.

    Example:
        >>> import torch, lamfast
        >>> from lamfast.ops import blur_path_torch
        >>> x = torch.rand(3, 16, 16)
        >>> torch.allclose(blur_path_torch(x, 10)[0], lamfast.blur_path(x, 10)[0], atol=1e-6)
        True
    """
    _kernel_checks(image, fold, sigma, l)
    batched = image.dim() == 4
    x = image if batched else image.unsqueeze(0)
    B, C, H, W = x.shape
    pad, steps = l // 2, fold + 1
    taps = step_taps(fold, sigma, l, x.device)
    planes = x.to(torch.float64).reshape(B * C, 1, H, W)
    planes = planes.index_select(3, reflect101_index(W, pad, x.device))
    planes = planes.index_select(2, reflect101_index(H, pad, x.device))
    rows = F.conv2d(planes, taps.view(steps, 1, 1, l))  # [BC, S, H+2p, W]
    gamma = F.conv2d(rows, taps.view(steps, 1, l, 1), groups=steps)  # [BC, S, H, W]
    path = gamma[:, 1:]
    deriv = (gamma[:, 1:] - gamma[:, :-1]) * fold

    def to_output(t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(B, C, fold, H, W).transpose(1, 2).to(image.dtype).contiguous()
        return t if batched else t.squeeze(0)

    return to_output(path), to_output(deriv)


def _fake(image, fold=50, sigma=1.2, l=9):
    _kernel_checks(image, fold, sigma, l)
    shape = list(image.shape)
    shape.insert(image.dim() - 3, fold)
    return image.new_empty(shape), image.new_empty(shape)


def _setup_context(ctx, inputs, output):
    image, fold, sigma, l = inputs
    ctx.meta = (tuple(image.shape), image.dtype, fold, sigma, l)


def _backward(ctx, grad_path, grad_deriv):
    """Adjoint of the blur path: transposed 1-D passes, then fold the padding back."""
    shape, dtype, fold, sigma, l = ctx.meta
    batched = len(shape) == 4
    B, C, H, W = shape if batched else (1, *shape)
    pad, steps = l // 2, fold + 1
    ref = grad_path if grad_path is not None else grad_deriv
    device = ref.device

    def planes(g: torch.Tensor) -> torch.Tensor:  # [B?,fold,C,H,W] -> [BC, fold, H, W]
        g = g if batched else g.unsqueeze(0)
        return g.to(torch.float64).transpose(1, 2).reshape(B * C, fold, H, W)

    g_gamma = torch.zeros(B * C, steps, H, W, dtype=torch.float64, device=device)
    if grad_path is not None:
        g_gamma[:, 1:] += planes(grad_path)
    if grad_deriv is not None:
        gd = planes(grad_deriv) * fold
        g_gamma[:, 1:] += gd
        g_gamma[:, :-1] -= gd
    taps = step_taps(fold, sigma, l, device)
    g_rows = F.conv_transpose2d(g_gamma, taps.view(steps, 1, l, 1), groups=steps)
    g_pad = F.conv_transpose2d(g_rows, taps.view(steps, 1, 1, l))  # [BC, 1, H+2p, W+2p]
    g_cols = torch.zeros(B * C, 1, H, W + 2 * pad, dtype=torch.float64, device=device)
    g_cols.index_add_(2, reflect101_index(H, pad, device), g_pad)
    g_img = torch.zeros(B * C, 1, H, W, dtype=torch.float64, device=device)
    g_img.index_add_(3, reflect101_index(W, pad, device), g_cols)
    g_img = g_img.reshape(B, C, H, W).to(dtype)
    return (g_img if batched else g_img.squeeze(0)), None, None, None


torch.library.register_fake(_library.qualname(NAME), _fake)
_library.register_twin(NAME, blur_path_torch)
torch.library.register_autograd(_library.qualname(NAME), _backward, setup_context=_setup_context)


def blur_path(image: torch.Tensor, fold: int = 50, sigma: float = 1.2, l: int = 9):
    """Every step of the official LAM Gaussian-blur path, in one call.

    Step ``j = 1..fold`` blurs the image with the isotropic ``l x l`` Gaussian
    of ``sigma_j = sigma * (1 - j/fold)`` (so the last step is the image
    itself); its derivative is the image filtered with
    ``fold * (k_{sigma_j} - k_{sigma_{j-1}})``. Borders are reflect-101
    (cv2.BORDER_REFLECT_101), kernels are built in float64, the same kernel
    serves every channel. Differentiable w.r.t. ``image``.

    Args:
        image: [C,H,W] or [B,C,H,W] floating tensor, any device.
        fold: number of path steps, >= 1.
        sigma: blur of the path's start, >= 0.
        l: odd kernel size, >= 1.
    Returns:
        (path, deriv): each [fold,C,H,W] (or [B,fold,C,H,W]), image's dtype.
    Raises:
        LamfastError: wrong rank, non-float dtype, fold < 1, sigma < 0, even l.

    Example:
        >>> import torch, lamfast
        >>> path, deriv = lamfast.blur_path(torch.rand(3, 16, 16), fold=10)
        >>> path.shape, deriv.shape
        (torch.Size([10, 3, 16, 16]), torch.Size([10, 3, 16, 16]))
    """
    check_args(image, fold, sigma, l)
    return torch.ops.lamfast.blur_path(image, fold, float(sigma), l)
