"""The path engine shared by LAM, Integrated Gradients and BlurIG.

A path method integrates input gradients of an objective along a path of
inputs: ``Σ_j grad F(γ_j) ⊙ γ'_j``. :func:`integrate_path` is the one loop
that does it: it runs the path points through the objective in chunks,
takes gradients w.r.t. the points only, zeroes NaN entries where asked, and
folds each chunk into an accumulator with :func:`lamfast.path_accumulate`,
so memory is bounded by the chunk and never by the whole path.

Several independent paths of equal shape (``L`` leads: a batch of images,
or LAM's crops around different windows) share each forward, and ``K``
objectives of one forward (LAM's windows of one image) share it too. Counts
stay on the device; nothing in the loop waits for the device.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from lamfast.ops import path_accumulate

from lamfast.errors import LamfastError

# On CPU a chunk only pays while its activations stay small: for an
# EDSR-sized model at 64² (about 0.1 GB of activations per path point),
# 2-core measurements gave 0.36 s per point at chunk 1 and 0.41 s at chunk
# 4 (1 thread). Small models, where per-chunk overhead dominates, still
# get chunks of many points.
CPU_CHUNK_BYTES = 64 << 20

# What a device raises when a chunk does not fit (torch.OutOfMemoryError
# from torch 2.5, torch.cuda.OutOfMemoryError before).
_OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


@dataclass(frozen=True)
class PathChunk:
    """Which path points one objective call holds.

    Points are numbered lead-major (``item = lead * steps + step``); a chunk
    is the consecutive items ``start:stop``.

    Attributes:
        start, stop: item range.
        steps: S, points per lead.
        lead_index: [stop - start] long, on the points' device: each item's lead.
    """

    start: int
    stop: int
    steps: int
    lead_index: torch.Tensor

    def segments(self) -> list[tuple[int, int, int]]:
        """``(lead, a, b)``: chunk rows ``a:b`` belong to ``lead``, in order."""
        out = []
        item = self.start
        while item < self.stop:
            lead = item // self.steps
            end = min(self.stop, (lead + 1) * self.steps)
            out.append((lead, item - self.start, end - self.start))
            item = end
        return out


@dataclass
class PathIntegral:
    """Result of :func:`integrate_path`.

    Attributes:
        total: [K, L, C, H, W], ``Σ_j g_j ⊙ γ'_j`` per objective and lead (not averaged).
        nan_steps: [K, L] int64 on the device: path points whose gradient held
            NaN (zeroed); zeros when NaN is not zeroed.
        batch_size: path points per forward after the probe (the last
            chunk size used: smaller than asked if a chunk ran out of memory).
        alt_total: like ``total`` with ``alt_deriv`` in place of γ'_j, or None
            without ``alt_deriv``.
    """

    total: torch.Tensor
    nan_steps: torch.Tensor
    batch_size: int
    alt_total: torch.Tensor | None = None


class SavedTensorMeter:
    """Context manager summing the bytes autograd saves for the backward.

    Works for any model (modules, functional code, custom autograd); used on
    the probe point to size the chunks that follow. Parameters are left out:
    they are saved once whatever the chunk.
    """

    def __init__(self) -> None:
        self.bytes = 0
        self._hooks = None
        self._seen: set[int] = set()

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        if isinstance(t, nn.Parameter):
            return t
        # One activation is often saved by several ops (a conv's input is the
        # ReLU's output): count each storage once. Counting per save
        # overstated resnet50's point about 3-fold, which cut IG's chunks
        # on an H100 to an eighth of what fit.
        try:
            storage = t.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # tensors without storage (functorch wrappers, ...)
            key, size = None, t.numel() * t.element_size()
        if key is None or key == 0 or key not in self._seen:
            if key:
                self._seen.add(key)
            self.bytes += size
        return t

    def __enter__(self) -> "SavedTensorMeter":
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


def free_bytes(device: torch.device) -> int:
    """Bytes free for tensors on ``device``: the CUDA allocator's free memory, else the memory Linux can
    give without swapping (MemAvailable)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    pages = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else 0
    return int(pages * os.sysconf("SC_PAGE_SIZE")) if pages else 4 << 30


def point_bytes(saved_bytes: int, point: torch.Tensor) -> int:
    """Memory one path point costs in a chunk: the bytes autograd saved for
    it three times over (the tensors, their gradients, temporaries between
    ops) plus its input and the input's copies and gradient."""
    return 3 * max(saved_bytes, 1) + 4 * point.numel() * point.element_size()


def chunk_size(per_point: int, device: torch.device, items: int) -> int:
    """Path points per forward: about 40 % of the device's free memory and,
    on CPU, at most :data:`CPU_CHUNK_BYTES` of activations."""
    fit = max(1, int(0.4 * free_bytes(device)) // per_point)
    if device.type == "cpu":
        fit = min(fit, CPU_CHUNK_BYTES // per_point)
    return max(1, min(fit, items))


def _objective_grads(value: torch.Tensor, inputs: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """Input gradients of each of K objectives [K, N], one backward each (the graph kept for the next).

    Yields ``(k, g)`` with g [1, N, ...]. One backward per objective measured
    faster than batched backwards (``is_grads_batched``) on CPU and on an
    H100: 16 windows of a 64² EDSR-baseline path took 0.26 s one by one,
    0.31 s in fours and 0.33 s all at once, with 8x the memory.
    """
    totals = value.sum(dim=1)
    K = totals.shape[0]
    for k in range(K):
        (g,) = torch.autograd.grad(totals[k], inputs, retain_graph=k < K - 1)
        yield k, g[None]


def _accumulate(accs: list[tuple[torch.Tensor, torch.Tensor]], nan_steps: torch.Tensor, k0: int,
                grads: torch.Tensor, chunk: PathChunk, zero_nan: bool) -> None:
    """Fold a chunk's gradients [k, n, C, H, W] into each ``acc[k0:k0+k]`` of ``accs`` (accumulator,
    the chunk's derivatives [n, C, H, W]), lead by lead."""
    if zero_nan:
        nan = torch.isnan(grads)
        had_nan = nan.flatten(2).any(dim=2)  # [k, n]
        grads = torch.where(nan, torch.zeros((), dtype=grads.dtype, device=grads.device), grads)
    # Whole leads in a row go into one call; a partial lead at either end of the chunk alone.
    groups: list[list[int]] = []  # [first lead, leads, a, b, whole]
    for lead, a, b in chunk.segments():
        whole = int(b - a == chunk.steps)
        if whole and groups and groups[-1][4]:
            groups[-1][1] += 1
            groups[-1][3] = b
        else:
            groups.append([lead, 1, a, b, whole])
    k = grads.shape[0]
    for first, n, a, b, _ in groups:
        steps = (b - a) // n
        g = grads[:, a:b].reshape(k, n, steps, *grads.shape[2:])
        for acc, deriv in accs:
            d = deriv[a:b].reshape(n, steps, *deriv.shape[1:])
            for i in range(k):
                path_accumulate(acc[k0 + i, first : first + n], g[i], d)
        if zero_nan:
            nan_steps[k0 : k0 + k, first : first + n] += had_nan[:, a:b].reshape(k, n, steps).sum(dim=2)


def integrate_path(
    objective: Callable[[torch.Tensor, PathChunk], torch.Tensor],
    path: torch.Tensor,
    deriv: torch.Tensor,
    *,
    batch_size: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
    zero_nan: bool = True,
    acc_dtype: torch.dtype | None = None,
    alt_deriv: torch.Tensor | None = None,
) -> PathIntegral:
    """Integrate the objectives' input gradients along L paths, chunk by chunk.

    The first point (lead 0, step 0) goes alone, as the probe: the bytes
    autograd saves for it size the chunks that follow when ``batch_size``
    is None. Its gradient counts like every other point's.

    Args:
        objective: ``(points [N, C, H, W], chunk) -> [K, N]`` (or [N] for
            K = 1), one objective value per point and objective; its sums
            are differentiated, so the points must not interact (true for
            models in eval mode). It receives a copy of the points, so
            models that edit their input in place are safe.
        path: [L, S, C, H, W] path points γ_j of L independent paths.
        deriv: same shape, the path derivative γ'_j at those points.
        batch_size: path points per forward/backward, across leads;
            None: from the probe's memory (small on CPU, where large chunks
            do not pay). A chunk that runs out of device memory before it
            adds anything is halved and retried, down to one point.
        on_chunk: called with the number of points done after each chunk.
        zero_nan: zero NaN gradient entries and count the points that had
            them, as the official LAM does; False lets NaN reach the sum, as
            captum's IG does.
        acc_dtype: accumulator dtype (default float64 for float64 paths,
            else float32).
        alt_deriv: None, or a second weighting of the same gradients, shaped
            as ``deriv``, summed into ``alt_total`` (LAM's fold/2 sum weights
            every second point, at no extra forward or backward).
    Returns:
        PathIntegral.
    Raises:
        LamfastError: shapes that do not fit, or batch_size < 1.
    """
    if path.shape != deriv.shape or path.dim() != 5:
        raise LamfastError(f"integrate_path: path {tuple(path.shape)} and deriv {tuple(deriv.shape)} must match, [L,S,C,H,W]")
    if alt_deriv is not None and alt_deriv.shape != deriv.shape:
        raise LamfastError(f"integrate_path: alt_deriv {tuple(alt_deriv.shape)} must match deriv {tuple(deriv.shape)}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise LamfastError(f"integrate_path: batch_size must be an integer >= 1, got {batch_size!r}")
    L, S = path.shape[:2]
    item = path.shape[2:]
    items = L * S
    points_all = path.reshape(items, *item)
    deriv_all = deriv.reshape(items, *item)
    alt_all = alt_deriv.reshape(items, *item) if alt_deriv is not None else None
    lead_of_item = torch.arange(items, device=path.device) // S
    acc_dtype = acc_dtype or (torch.float64 if path.dtype == torch.float64 else torch.float32)
    acc: torch.Tensor | None = None
    alt_acc: torch.Tensor | None = None
    nan_steps: torch.Tensor | None = None
    state: dict = {}

    def run(start: int, stop: int, meter: SavedTensorMeter | None = None) -> torch.Tensor:
        nonlocal acc, alt_acc, nan_steps
        chunk = PathChunk(start, stop, S, lead_of_item[start:stop])
        inputs = points_all[start:stop].detach().requires_grad_(True)
        with torch.enable_grad():
            if meter is not None:
                with meter:
                    value = objective(inputs.clone(), chunk)
            else:
                value = objective(inputs.clone(), chunk)
            if value.dim() == 1:
                value = value[None]
            if acc is None:
                acc = torch.zeros(value.shape[0], L, *item, dtype=acc_dtype, device=path.device)
                nan_steps = torch.zeros(value.shape[0], L, dtype=torch.long, device=path.device)
                if alt_all is not None:
                    alt_acc = torch.zeros_like(acc)
            accs = [(acc, deriv_all[start:stop])]
            if alt_all is not None:
                accs.append((alt_acc, alt_all[start:stop]))
            state["added"] = False
            for k0, g in _objective_grads(value, inputs):
                state["added"] = True
                _accumulate(accs, nan_steps, k0, g, chunk, zero_nan)
        if on_chunk is not None:
            on_chunk(stop - start)
        return value

    start = 0
    if batch_size is None:
        meter = SavedTensorMeter()
        run(0, 1, meter)
        per_point = point_bytes(meter.bytes, points_all[:1])
        batch_size = chunk_size(per_point, path.device, items)
        start = 1
    begin = start
    while begin < items:
        stop = min(begin + batch_size, items)
        try:
            run(begin, stop)
        except _OOM:
            # Out of device memory before this chunk added anything: halve the
            # chunk and go on. After a partial add, a retry would count twice.
            if stop - begin == 1 or state.get("added"):
                raise
            if path.device.type == "cuda":
                torch.cuda.empty_cache()
            batch_size = (stop - begin) // 2
            continue
        begin = stop
    assert acc is not None and nan_steps is not None
    return PathIntegral(acc, nan_steps, batch_size, alt_acc)
