"""Many LAM windows of one image for the price of one forward per path chunk.

The forward through the path is the same for every window of an image; only
the backward differs. :func:`lam_windows` runs each chunk of path points
forward once and back-propagates the K window objectives together (batched
grad outputs, falling back to one backward per window where a model's ops
cannot be batched), so K windows cost F + K·B instead of K·(F + B).
"""
from __future__ import annotations

import time
from typing import Iterable, Sequence

import torch
from torch import nn

from lamfast.lam_engine import (
    LAMError,
    LAMResult,
    check_path_args,
    check_window,
    finish,
    first_step,
    prepare,
    window_objectives,
)
from lamfast.modelstate import attribution_state
from lamfast.ops import blur_path
from lamfast.path import add_path_gradients, chunk_size
from lamfast.windows import Window, explicit


def _window_grads(objectives: torch.Tensor, inputs: torch.Tensor, per_call: int, state: dict) -> Iterable[torch.Tensor]:
    """Input gradients of each window's objective, ``per_call`` windows per backward.

    Args:
        objectives: [K, N] objectives (one graph).
        inputs: the [N,...] leaf they depend on.
    Yields:
        [k, N, ...] gradients for consecutive groups of windows.
    """
    K = objectives.shape[0]
    totals = objectives.sum(dim=1)  # [K]
    for k0 in range(0, K, per_call):
        group = totals[k0 : k0 + per_call]
        last = k0 + per_call >= K
        if state.get("batched", True) and len(group) > 1:
            try:
                eye = torch.eye(len(group), dtype=group.dtype, device=group.device)
                (g,) = torch.autograd.grad(group, inputs, grad_outputs=eye, is_grads_batched=True,
                                           retain_graph=True)
                yield g
                continue
            except RuntimeError:
                state["batched"] = False  # a model op without a batching rule: loop from now on
        grads = []
        for i in range(len(group)):
            (g,) = torch.autograd.grad(group[i], inputs, retain_graph=not (last and i == len(group) - 1))
            grads.append(g)
        yield torch.stack(grads)


def lam_windows(
    model: nn.Module,
    image: torch.Tensor,
    windows: Sequence[Sequence[int]],
    *,
    window_size: int = 16,
    fold: int = 50,
    sigma: float = 1.2,
    l: int = 9,
    batch_size: int | None = None,
    window_batch: int | None = None,
    mode: str = "compat",
    device: str | torch.device | None = None,
    progress: bool = False,
    errors: str = "raise",
) -> list[LAMResult | LAMError]:
    """LAM for K windows of one image, each equal to :func:`lamfast.lam` for that window.

    Args:
        model, image, fold, sigma, l, mode, device: as :func:`lamfast.lam`.
        windows: ``[(h, w)]`` (side ``window_size``) or ``[(h, w, size)]``, SR pixels.
        batch_size: path points per forward (default: from free memory).
        window_batch: windows per batched backward (default: 1 on CPU, where
            batching measured slower; elsewhere as many as the memory budget
            of one chunk allows).
        errors: ``"raise"`` raises the first LAMError; ``"return"`` puts it
            in the list in place of that window's result (the others still run).
        progress: tqdm bar over the path steps.
    Returns:
        One LAMResult (or LAMError) per window, in order. ``timings`` holds
        the window's share of the run and the run's total.
    """
    if errors not in ("raise", "return"):
        raise LAMError(f"errors must be 'raise' or 'return', got {errors!r}")
    t0 = time.perf_counter()
    check_path_args(fold, sigma, l, mode, batch_size)
    wins: list[Window] = explicit(windows, window_size)
    if not wins:
        return []
    outcome: list[LAMResult | LAMError | None] = [None] * len(wins)
    for i, (h, w, s) in enumerate(wins):
        try:
            check_window(h, w, s)
        except LAMError as exc:
            outcome[i] = exc
    x = prepare(model, image, device)
    H, W = x.shape[-2:]

    with attribution_state(model):
        path, deriv = blur_path(x, fold, float(sigma), l)
        first = first_step(model, path)
        sr = first.output.detach()[0]
        for i, (h, w, s) in enumerate(wins):
            if outcome[i] is None:
                try:
                    check_window(h, w, s, tuple(sr.shape[-2:]))
                except LAMError as exc:
                    outcome[i] = exc
        if errors == "raise":
            for o in outcome:
                if isinstance(o, LAMError):
                    raise o
        live = [i for i, o in enumerate(outcome) if o is None]
        K = len(live)
        live_windows = [wins[i] for i in live]
        acc = torch.zeros(K, *x.shape, dtype=torch.float32, device=x.device)
        nan_steps = [0] * K
        chunk = batch_size or chunk_size(first.activation_bytes, first.inputs, sr, fold)
        if window_batch is None:
            # On CPU a batched (vmapped) backward measured slower than one
            # backward per window (EDSR 64x16, 16 windows, 1 thread: 4.1 s vs
            # 3.0 s); accelerators gain from the batch, bounded by memory.
            window_batch = 1 if x.device.type == "cpu" else max(
                1, chunk_size(first.activation_bytes, first.inputs, sr, fold * max(K, 1)) // chunk)
        per_call = window_batch
        state: dict = {}

        def integrate(inputs: torch.Tensor, y: torch.Tensor, start: int, stop: int) -> None:
            objectives = window_objectives(y, live_windows, mode)
            k = 0
            for grads in _window_grads(objectives, inputs, per_call, state):
                for g in grads:
                    nan_steps[k] += add_path_gradients(acc[k], g, deriv[start:stop])
                    k += 1

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=fold, desc=f"LAM path ({K} windows)", unit="step", leave=False)
        try:
            if K:
                with torch.enable_grad():
                    integrate(first.inputs, first.output, fold - 1, fold)
                del first.output
                if bar is not None:
                    bar.update(1)
                for start in range(0, fold - 1, chunk):
                    stop = min(start + chunk, fold - 1)
                    inputs = path[start:stop].detach().requires_grad_(True)
                    with torch.enable_grad():
                        integrate(inputs, model(inputs.clone()), start, stop)
                    if bar is not None:
                        bar.update(stop - start)
        finally:
            if bar is not None:
                bar.close()
    elapsed = time.perf_counter() - t0
    for k, i in enumerate(live):
        try:
            outcome[i] = finish(acc[k], nan_steps[k], sr=sr, scale=first.scale, window=wins[i], fold=fold,
                                sigma=sigma, l=l, mode=mode, batch_size=chunk,
                                timings={"total": elapsed / max(K, 1), "run_total": elapsed, "windows": float(K)})
        except LAMError as exc:
            if errors == "raise":
                raise
            outcome[i] = exc
    return outcome  # type: ignore[return-value]
