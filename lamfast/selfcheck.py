"""Op self-check: each op's compiled kernel against its pure-torch twin.

Used by ``lamfast selfcheck`` (and ``lamfast info``) to show, on the user's
own machine, that the ops agree and how fast each backend is.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from lamfast._ext import ext_available
from lamfast.ops import blur_path_torch, kde_map_torch, path_accumulate_torch

# Agreement required between a compiled kernel and its twin: max abs diff
# relative to max(1, max |twin|), since accumulations grow with the data.
TOLERANCE = 1e-5


@dataclass
class OpCheck:
    """One op's parity and timing on one input."""

    op: str
    size: str
    max_abs_diff: float | None  # scaled as TOLERANCE; None when only the twin runs
    compiled_s: float | None
    twin_s: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff is None or self.max_abs_diff <= TOLERANCE


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _max_diff(a, b) -> float:
    if isinstance(a, (tuple, list)):
        return max(_max_diff(x, y) for x, y in zip(a, b))
    scale = max(1.0, b.double().abs().max().item())
    return (a.double() - b.double()).abs().max().item() / scale


def run_selfcheck(size: int = 64, fold: int = 50, device: str = "cpu", seed: int = 0) -> list[OpCheck]:
    """Compare every op with its twin on random data of ``size``² pixels."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(3, size, size, generator=gen).to(device)
    grads = torch.randn(fold, 3, size, size, generator=gen).to(device)
    deriv = torch.randn(fold, 3, size, size, generator=gen).to(device)
    sal = torch.rand(size, size, generator=gen).to(device) ** 8
    acc0 = torch.zeros(3, size, size, device=device)

    def accumulate(op):
        acc = acc0.clone()
        op(acc, grads, deriv)
        return acc

    cases = [
        ("blur_path", lambda: torch.ops.lamfast.blur_path(image, fold, 1.2, 9), lambda: blur_path_torch(image, fold, 1.2, 9)),
        ("path_accumulate", lambda: accumulate(torch.ops.lamfast.path_accumulate), lambda: accumulate(path_accumulate_torch)),
        ("kde_map", lambda: torch.ops.lamfast.kde_map(sal), lambda: kde_map_torch(sal)),
    ]
    compiled = ext_available()
    results = []
    for name, op_call, twin_call in cases:
        twin_out = twin_call()
        twin_s = best_time(twin_call)
        diff = compiled_s = None
        if compiled:
            diff = _max_diff(op_call(), twin_out)
            compiled_s = best_time(op_call)
        results.append(OpCheck(name, f"{size}x{size}", diff, compiled_s, twin_s))
    return results


def format_report(results: list[OpCheck]) -> str:
    lines = [f"{'op':<16} {'size':<8} {'ext vs twin':>14} {'ext ms':>9} {'twin ms':>9} {'speed-up':>9}  status"]
    for r in results:
        diff = "n/a" if r.max_abs_diff is None else f"{r.max_abs_diff:.2e}"
        ext_ms = "n/a" if r.compiled_s is None else f"{r.compiled_s * 1e3:.2f}"
        speed = "n/a" if r.compiled_s is None else f"{r.twin_s / max(r.compiled_s, 1e-9):.1f}x"
        status = "ok" if r.ok else f"MISMATCH (> {TOLERANCE:g})"
        lines.append(f"{r.op:<16} {r.size:<8} {diff:>14} {ext_ms:>9} {r.twin_s * 1e3:>9.2f} {speed:>9}  {status}")
    return "\n".join(lines)
