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

Window = tuple[int, int, int]


def squared_gradient(y: torch.Tensor) -> torch.Tensor:
    """``hg[:,:,:,:-1] + wg[:,:,:-1,:]`` of outputs [N,C,sH,sW]: [N,C,sH-1,sW-1]."""
    hg = (y[:, :, :-1, :] - y[:, :, 1:, :]).pow(2)
    wg = (y[:, :, :, :-1] - y[:, :, :, 1:]).pow(2)
    return hg[:, :, :, :-1] + wg[:, :, :-1, :]


def sqrt_zero_subgradient(x: torch.Tensor) -> torch.Tensor:
    """sqrt whose gradient at 0 is 0 instead of inf (no NaN from 0 * inf)."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, torch.ones_like(x)).pow(0.5), torch.zeros_like(x))


def _window_source(y: torch.Tensor, mode: str) -> torch.Tensor:
    sq = squared_gradient(y)
    return sq if mode == "robust" else sq.pow(0.5)


def _window_value(source: torch.Tensor, window: Window, mode: str) -> torch.Tensor:
    h, w, s = window
    part = source[:, :, h : h + s, w : w + s]
    if mode == "robust":
        part = sqrt_zero_subgradient(part)
    return part.sum(dim=(1, 2, 3))


def window_objectives(y: torch.Tensor, windows: Sequence[Window], mode: str) -> torch.Tensor:
    """Every window's objective on every output: [N,C,sH,sW] -> [K, N].

    The squared differences (and in compat the sqrt) are computed once and
    shared by the K windows.
    """
    source = _window_source(y, mode)
    return torch.stack([_window_value(source, win, mode) for win in windows])


def window_objective(y: torch.Tensor, h: int, w: int, size: int, mode: str) -> torch.Tensor:
    """:func:`window_objectives` for one window: [N,C,sH,sW] -> [N]."""
    return window_objectives(y, [(h, w, size)], mode)[0]


def segment_objectives(y: torch.Tensor, segments: Sequence[tuple[int, int, Window]], mode: str) -> torch.Tensor:
    """Each output's own window: [N,C,sH,sW] -> [N].

    Args:
        segments: ``(start, stop, window)``: outputs ``start:stop`` use
            ``window``; together they cover 0..N in order.
    """
    source = _window_source(y, mode)
    return torch.cat([_window_value(source[a:b], win, mode) for a, b, win in segments])


def exact_ties(y: torch.Tensor) -> torch.Tensor:
    """[N] bool: outputs [N,C,sH,sW] with a zero squared gradient anywhere.

    Those are the outputs whose compat objective has NaN input gradients.
    """
    return (squared_gradient(y) == 0).flatten(1).any(dim=1)


def edge_strength(sr: torch.Tensor) -> torch.Tensor:
    """The objective's density on one SR image: ``G`` summed over channels.

    Args:
        sr: [C,sH,sW].
    Returns:
        [sH-1, sW-1] float32; a window's objective is the sum of its part.
    """
    return squared_gradient(sr[None].float()).pow(0.5)[0].sum(0)
