"""LAM's objective: the gradient magnitude of the SR output summed over a window.

Exactly the official ``attr_grad``: ``hg = (Y[:,:,:-1,:] - Y[:,:,1:,:])²``,
``wg = (Y[:,:,:,:-1] - Y[:,:,:,1:])²``, ``G = sqrt(hg[:,:,:,:-1] + wg[:,:,:-1,:])``
and the sum of ``G[:, :, h:h+size, w:w+size]`` over channels. A window is
``(h, w, size)`` in SR pixels.

In ``compat`` mode the sqrt covers the whole output before the window is
cut, as officially: an exact zero anywhere in the output gives a NaN input
gradient (0 · inf in sqrt's backward), the official NaN steps. In
``robust`` mode the window is cut first and sqrt has a zero subgradient at
0, so no NaN arises.
"""
from __future__ import annotations

from typing import Sequence

import torch

from lamfast.ops.lam_objective import exact_ties as exact_ties_torch
from lamfast.ops.lam_objective import (
    lam_objective,
    squared_gradient,
    sqrt_zero_subgradient,
    uses_kernel,
    window_source,
    window_value,
)

Window = tuple[int, int, int]

__all__ = [
    "Window", "exact_ties", "squared_gradient", "sqrt_zero_subgradient", "window_objectives", "window_objective",
    "segment_objectives", "segment_objectives_and_ties", "edge_strength",
]


def exact_ties(y: torch.Tensor) -> torch.Tensor:
    """[N] bool: outputs [N,C,sH,sW] with a zero squared gradient anywhere.

    Those are the outputs whose compat objective has NaN input gradients.
    Not differentiable. The kernel computes them bit for bit as torch does.
    """
    with torch.no_grad():
        if uses_kernel(y):
            return lam_objective(y, [(0, 0, 1)])[1]
        return exact_ties_torch(y)


def _fused(y: torch.Tensor, mode: str) -> bool:
    # official mode keeps torch's own formulation: its results must equal
    # the official code's bit for bit, sums included.
    return mode != "official" and uses_kernel(y)


def window_objectives(y: torch.Tensor, windows: Sequence[Window], mode: str) -> torch.Tensor:
    """Every window's objective on every output: [N,C,sH,sW] -> [K, N].

    The squared differences (and in compat the sqrt) are computed once and
    shared by the K windows; on CPU in one fused pass
    (:func:`lamfast.ops.lam_objective`).
    """
    robust = mode == "robust"
    if _fused(y, mode):
        return lam_objective(y, [tuple(win) for win in windows], robust)[0]
    source = window_source(y, robust)
    return torch.stack([window_value(source, win, robust) for win in windows])


def window_objective(y: torch.Tensor, h: int, w: int, size: int, mode: str) -> torch.Tensor:
    """:func:`window_objectives` for one window: [N,C,sH,sW] -> [N]."""
    return window_objectives(y, [(h, w, size)], mode)[0]


def segment_objectives_and_ties(y: torch.Tensor, segments: Sequence[tuple[int, int, Window]], mode: str,
                                ties: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each output's own window, and (if ``ties``) which outputs tie exactly.

    Args:
        y: [N,C,sH,sW].
        segments: ``(start, stop, window)``: outputs ``start:stop`` use
            ``window``; together they cover 0..N in order.
    Returns:
        (objectives [N], ties [N] bool or None).
    """
    robust = mode == "robust"
    if _fused(y, mode):
        per_output = [tuple(win) for a, b, win in segments for _ in range(b - a)]
        value, tied = lam_objective(y, [per_output], robust)
        return value[0], (tied if ties else None)
    source = window_source(y, robust)
    value = torch.cat([window_value(source[a:b], win, robust) for a, b, win in segments])
    if not ties:
        return value, None
    return value, exact_ties_torch(y.detach())


def segment_objectives(y: torch.Tensor, segments: Sequence[tuple[int, int, Window]], mode: str) -> torch.Tensor:
    """Each output's own window: [N,C,sH,sW] -> [N] (see :func:`segment_objectives_and_ties`)."""
    return segment_objectives_and_ties(y, segments, mode, ties=False)[0]


def edge_strength(sr: torch.Tensor) -> torch.Tensor:
    """The objective's density on one SR image: ``G`` summed over channels.

    Args:
        sr: [C,sH,sW].
    Returns:
        [sH-1, sW-1] float32; a window's objective is the sum of its part.
    """
    return squared_gradient(sr[None].float()).pow(0.5)[0].sum(0)
