"""LAM's objective: the gradient magnitude of the SR output summed over a window.

Also LAM_Demo's other objectives, chosen by ``objective`` and ``reduce``
(see :class:`lamfast.LAMParams`): ``attr_id``, the window's output values,
and ``reduce="mean"``, the official ``torch.mean`` over the window's
entries (channels included, the window clipped where ``G`` stops one short
of the output, as the official crop is); or a function of the output window.

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

from typing import Callable, Sequence, Union

import torch

from lamfast.errors import LAMError

from lamfast.ops.lam_objective import (lam_objective, squared_gradient, sqrt_zero_subgradient, window_source,
                                       window_value)

Window = tuple[int, int, int]

__all__ = ["Window", "edge_strength", "exact_ties", "segment_objectives_and_ties", "window_objective",
           "window_objectives"]


def exact_ties(y: torch.Tensor) -> torch.Tensor:
    """[N] bool: outputs [N,C,sH,sW] with a zero squared gradient anywhere.

    Those are the outputs whose compat objective has NaN input gradients.
    Not differentiable. Computed by the :func:`lamfast.lam_objective` op, bit for bit as torch does.
    """
    with torch.no_grad():
        return lam_objective(y, [(0, 0, 1)])[1]


def _fused(mode: str) -> bool:
    # Every mode but official runs the fused op (its kernel or its twin, as the
    # dispatcher picks). Official mode keeps torch's own formulation: its results
    # must equal the official code's bit for bit, sums included.
    return mode != "official"


Objective = Union[str, Callable[[torch.Tensor], torch.Tensor]]


def window_entries(y_shape: Sequence[int], window: Window, objective: Objective) -> int:
    """How many entries the official crop of ``window`` holds: what ``reduce="mean"`` divides by."""
    C, sH, sW = y_shape[-3:]
    h, w, s = window
    if objective == "grad":  # G is one row and column short of the output
        sH, sW = sH - 1, sW - 1
    return C * max(0, min(h + s, sH) - h) * max(0, min(w + s, sW) - w)


def _other_values(y: torch.Tensor, windows: Sequence[Window], mode: str, objective: Objective,
                  reduce: str) -> torch.Tensor:
    """[K, N] for ``attr_id``, a function objective, or ``attr_grad`` with reduce="mean" in official mode."""
    if objective == "grad":  # official mode: torch.mean exactly as the official code calls it
        source = window_source(y, mode == "robust")
        values = []
        for h, w, s in windows:
            part = source[:, :, h:h + s, w:w + s]
            if mode == "robust":
                part = sqrt_zero_subgradient(part)
            values.append(part.mean(dim=(1, 2, 3)))
        return torch.stack(values)
    values = []
    for h, w, s in windows:
        part = y[:, :, h:h + s, w:w + s]
        if callable(objective):
            value = objective(part)
            if not isinstance(value, torch.Tensor) or value.shape != (y.shape[0],):
                got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise LAMError(f"the objective function must map the output window [N,C,d,d] to one value per "
                               f"path point [N] = [{y.shape[0]}], got {got}", param="objective")
        else:
            value = part.sum(dim=(1, 2, 3)) if reduce == "sum" else part.mean(dim=(1, 2, 3))
        values.append(value)
    return torch.stack(values)


def window_objectives(y: torch.Tensor, windows: Sequence[Window], mode: str, objective: Objective = "grad",
                      reduce: str = "sum") -> torch.Tensor:
    """Every window's objective on every output: [N,C,sH,sW] -> [K, N].

    The squared differences (and in compat the sqrt) are computed once and
    shared by the K windows; on CPU in one fused pass
    (:func:`lamfast.ops.lam_objective`). ``objective`` and ``reduce`` as
    :class:`lamfast.LAMParams`.
    """
    if objective != "grad" or (reduce == "mean" and mode == "official"):
        return _other_values(y, windows, mode, objective, reduce)
    robust = mode == "robust"
    if _fused(mode):
        value = lam_objective(y, [tuple(win) for win in windows], robust)[0]
    else:
        source = window_source(y, robust)
        value = torch.stack([window_value(source, win, robust) for win in windows])
    if reduce == "mean":
        counts = [window_entries(y.shape, win, "grad") for win in windows]
        value = value / torch.tensor(counts, dtype=value.dtype, device=value.device)[:, None]
    return value


def window_objective(y: torch.Tensor, h: int, w: int, size: int, mode: str) -> torch.Tensor:
    """:func:`window_objectives` for one window: [N,C,sH,sW] -> [N]."""
    return window_objectives(y, [(h, w, size)], mode)[0]


def segment_objectives_and_ties(y: torch.Tensor, segments: Sequence[tuple[int, int, Window]], mode: str,
                                ties: bool, objective: Objective = "grad",
                                reduce: str = "sum") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each output's own window, and (if ``ties``) which outputs tie exactly.

    Args:
        y: [N,C,sH,sW].
        segments: ``(start, stop, window)``: outputs ``start:stop`` use
            ``window``; together they cover 0..N in order.
        objective, reduce: as :class:`lamfast.LAMParams`.
    Returns:
        (objectives [N], ties [N] bool or None).
    """
    if objective != "grad" or reduce != "sum":
        value = torch.cat([window_objectives(y[a:b], [win], mode, objective, reduce)[0] for a, b, win in segments])
        return value, (exact_ties(y) if ties else None)
    robust = mode == "robust"
    if _fused(mode):
        per_output = [tuple(win) for a, b, win in segments for _ in range(b - a)]
        value, tied = lam_objective(y, [per_output], robust)
        return value[0], (tied if ties else None)
    source = window_source(y, robust)
    value = torch.cat([window_value(source[a:b], win, robust) for a, b, win in segments])
    if not ties:
        return value, None
    return value, exact_ties(y)


def edge_strength(sr: torch.Tensor) -> torch.Tensor:
    """The objective's density on one SR image: ``G`` summed over channels.

    Args:
        sr: [C,sH,sW].
    Returns:
        [sH-1, sW-1] float32; a window's objective is the sum of its part.
    """
    return squared_gradient(sr[None].float()).pow(0.5)[0].sum(0)
