"""``kde_map``: the official LAM KDE visual in O(N log N).

Kernels: CPU in ``csrc/cpu/kde_map_cpu.cpp`` and CUDA in
``csrc/cuda/kde_map_cuda.cu`` (built where torch has CUDA). Without the
extension, and on any other device, the pure-torch twin :func:`kde_map_torch`
below runs instead; it is also the test oracle.
"""
from __future__ import annotations

import torch

from lamfast.errors import LamfastError
from lamfast.ops import _library

NAME = "kde_map"


def check_args(saliency: torch.Tensor) -> None:
    """Raise LamfastError for the shapes and dtypes the op refuses (its kernels refuse negative or
    non-finite weights, which only the data can show)."""
    if not isinstance(saliency, torch.Tensor):
        raise LamfastError(f"kde_map: saliency must be a torch.Tensor, got {type(saliency).__name__}")
    if saliency.dim() not in (2, 3):
        raise LamfastError(f"kde_map: saliency must be [H,W] or [B,H,W], got shape {tuple(saliency.shape)}")
    if not saliency.is_floating_point():
        raise LamfastError(f"kde_map: saliency must be a floating tensor, got {saliency.dtype}")
    if saliency.shape[-1] < 1 or saliency.shape[-2] < 1:
        raise LamfastError(f"kde_map: saliency must have H, W >= 1, got shape {tuple(saliency.shape)}")


def _fft_size(target: int) -> int:
    """Smallest n >= target with prime factors 2, 3, 5 only: scipy's ``next_fast_len`` for real
    transforms (the sizes the compiled kernel uses too)."""
    from scipy.fft import next_fast_len  # here, so that import lamfast does not import scipy.fft

    return next_fast_len(max(target, 1), real=True)


def _kde_covariance(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bandwidth-scaled covariance of scipy's weighted ``gaussian_kde``.

    Points are the pixel centres (x=column, y=row) weighted by ``w``; the
    covariance is ``np.cov(aweights=w)`` (ddof 1) times Scott's factor²,
    ``n_eff^(-1/3)`` with ``n_eff = (Σw)²/Σw²``.

    Args:
        w: [B,H,W] float64 non-negative weights.
    Returns:
        (cov, has_mass): cov [B,3] as (xx, xy, yy); has_mass [B] bool.
    """
    B, H, W = w.shape
    total = w.sum(dim=(1, 2))
    has_mass = total > 0
    wn = w / torch.where(has_mass, total, torch.ones_like(total))[:, None, None]
    xs = torch.arange(W, dtype=torch.float64, device=w.device)[None, None, :]
    ys = torch.arange(H, dtype=torch.float64, device=w.device)[None, :, None]
    sum_sq = (wn * wn).sum(dim=(1, 2))
    mx = (wn * xs).sum(dim=(1, 2))[:, None, None]
    my = (wn * ys).sum(dim=(1, 2))[:, None, None]
    dx, dy = xs - mx, ys - my
    sxx = (wn * dx * dx).sum(dim=(1, 2))
    sxy = (wn * dx * dy).sum(dim=(1, 2))
    syy = (wn * dy * dy).sum(dim=(1, 2))
    unbias = 1.0 - sum_sq
    safe_sq = torch.where(has_mass, sum_sq, torch.ones_like(sum_sq))
    factor_sq = (1.0 / safe_sq) ** (-2.0 / 6.0)
    ok = has_mass & (unbias > 0)
    scale = torch.where(ok, factor_sq / torch.where(ok, unbias, torch.ones_like(unbias)), torch.zeros_like(unbias))
    return torch.stack([sxx * scale, sxy * scale, syy * scale], dim=1), has_mass


def _kde_kernel(cov: torch.Tensor, H: int, W: int, Ph: int, Pw: int) -> torch.Tensor:
    """``exp(-½ dᵀ S⁻¹ d)`` for every offset d, laid out for a circular FFT.

    A singular S (mass on one line or one pixel, where scipy raises) gives
    the degenerate Gaussian: zero width across the line, a delta for a pixel.

    Args:
        cov: [B,3] covariance (xx, xy, yy), float64.
    Returns:
        [B,Ph,Pw] float64; offsets beyond ±(H-1, W-1) are 0.
    """
    dev = cov.device
    pr = torch.arange(Ph, device=dev)
    pc = torch.arange(Pw, device=dev)
    dyi = torch.where(pr < H, pr, pr - Ph)
    dxi = torch.where(pc < W, pc, pc - Pw)
    valid = (dyi > -H)[:, None] & (dxi > -W)[None, :]
    dy = dyi.to(torch.float64)[None, :, None]
    dx = dxi.to(torch.float64)[None, None, :]
    a, b, c = (cov[:, i, None, None] for i in range(3))
    half_diff = 0.5 * (a - c)
    lam1 = 0.5 * (a + c) + torch.sqrt(half_diff * half_diff + b * b)
    det = a * c - b * b
    rank0 = ~(lam1 > 0)
    rank2 = ~rank0 & (det > 1e-12 * lam1 * lam1)
    rank1 = ~rank0 & ~rank2

    one = torch.ones_like(det)
    safe_det = torch.where(rank2, det, one)
    q = (c * dx * dx - 2.0 * b * dx * dy + a * dy * dy) / safe_det
    full = torch.exp(-0.5 * q)

    ex, ey, fx, fy = lam1 - c, b, b, lam1 - a
    use_e = ex * ex + ey * ey >= fx * fx + fy * fy
    vx, vy = torch.where(use_e, ex, fx), torch.where(use_e, ey, fy)
    norm = torch.sqrt(vx * vx + vy * vy)
    fallback_x = torch.where(a >= c, one, torch.zeros_like(one))
    vx = torch.where(norm > 0, vx / torch.where(norm > 0, norm, one), fallback_x)
    vy = torch.where(norm > 0, vy / torch.where(norm > 0, norm, one), 1.0 - fallback_x)
    along = vx * dx + vy * dy
    across = -vy * dx + vx * dy
    safe_lam = torch.where(rank1, lam1, one)
    line = torch.where(across.abs() <= 1e-6, torch.exp(-0.5 * along * along / safe_lam), torch.zeros_like(along))
    delta = ((dx == 0) & (dy == 0)).to(torch.float64)

    k = torch.where(rank2, full, torch.where(rank1, line, delta))
    return torch.where(valid, k, torch.zeros_like(k))


def _kernel_checks(saliency: torch.Tensor) -> None:
    # What the kernels (the C++ op_checks.h, this twin) and the fake refuse, for direct torch.ops calls.
    torch._check_value(saliency.dim() in (2, 3), lambda: f"kde_map: saliency must be [H,W] or [B,H,W], got "
                                                         f"{saliency.dim()} dims")
    torch._check_value(saliency.is_floating_point(), lambda: f"kde_map: saliency must be a floating tensor, got "
                                                             f"{saliency.dtype}")
    torch._check_value(saliency.shape[-1] >= 1 and saliency.shape[-2] >= 1,
                       lambda: "kde_map: saliency must have H, W >= 1")


def kde_map_torch(saliency: torch.Tensor) -> torch.Tensor:
    """Pure-torch twin of the compiled kernel (same algorithm, float64 FFT).

    Args:
        saliency: [H,W] or [B,H,W] non-negative floating map.
    Returns:
        Density at every pixel centre, each map divided by its max: same
        shape and dtype as ``saliency``; all zeros for a map without mass.

    Example:
        >>> import torch, lamfast
        >>> from lamfast.ops import kde_map_torch
        >>> m = torch.rand(12, 12)
        >>> torch.allclose(kde_map_torch(m), lamfast.kde_map(m), atol=1e-6)
        True
    """
    _kernel_checks(saliency)
    batched = saliency.dim() == 3
    w = (saliency if batched else saliency.unsqueeze(0)).to(torch.float64)
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise LamfastError("kde_map: saliency must be finite and non-negative (it weights the KDE points)")
    B, H, W = w.shape
    Ph, Pw = _fft_size(2 * H - 1), _fft_size(2 * W - 1)
    cov, has_mass = _kde_covariance(w)
    kernel = _kde_kernel(cov, H, W, Ph, Pw)
    padded = torch.zeros(B, Ph, Pw, dtype=torch.float64, device=w.device)
    padded[:, :H, :W] = w
    density = torch.fft.irfft2(torch.fft.rfft2(padded) * torch.fft.rfft2(kernel), s=(Ph, Pw))
    density = density[:, :H, :W].clamp_min(0.0)
    peak = density.amax(dim=(1, 2)) if B > 0 else density.new_zeros(0)
    ok = has_mass & (peak > 0)
    inv = torch.where(ok, 1.0 / torch.where(ok, peak, torch.ones_like(peak)), torch.zeros_like(peak))
    out = (density * inv[:, None, None]).to(saliency.dtype)
    return out if batched else out.squeeze(0)


def _fake(saliency):
    _kernel_checks(saliency)
    return torch.empty_like(saliency, memory_format=torch.contiguous_format)


torch.library.register_fake(_library.qualname(NAME), _fake)
_library.register_twin(NAME, kde_map_torch)


def kde_map(saliency: torch.Tensor) -> torch.Tensor:
    """The official LAM KDE visual: ``scipy.stats.gaussian_kde`` of the map.

    Exactly what ``vis_saliency_kde`` computes before its colour map: points
    at pixel centres (x=column, y=row) weighted by the map, Scott's bandwidth
    with the effective sample size ``(Σw)²/Σw²``, the full weighted
    covariance, evaluated at every pixel centre and divided by its max. It
    runs as one FFT convolution, O(N log N) instead of scipy's O(N²). Not
    differentiable.

    Args:
        saliency: [H,W] or [B,H,W] finite, non-negative floating map(s).
    Returns:
        Same shape and dtype, each map's max 1 (all zeros for an all-zero map).
    Raises:
        LamfastError: wrong rank or dtype, negative or non-finite values.

    Example:
        >>> import torch, lamfast
        >>> m = torch.zeros(16, 16); m[8, 8] = 1.0; m[4, 10] = 0.5
        >>> z = lamfast.kde_map(m)
        >>> z.shape, float(z.max())
        (torch.Size([16, 16]), 1.0)
    """
    check_args(saliency)
    return torch.ops.lamfast.kde_map(saliency.detach())
