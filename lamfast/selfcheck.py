"""Op self-check: each op's compiled kernel against its twin and the best plain-torch baseline.

Used by ``lamfast selfcheck`` to show, on the user's own machine, that the
ops agree with their pure-torch twins and whether the compiled kernels are
faster than plain torch there. Timings are ``torch.utils.benchmark.Timer``
blocks (its warm-up and CUDA synchronisation included), in the thread
count the process already has: the check never changes it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from lamfast.ops.baselines import op_contenders
from lamfast.ops.lam_objective import flat_windows
from lamfast.ops._library import has_compiled_kernel

# Agreement required between a compiled kernel and its twin: max abs diff
# relative to max(1, max |twin|), since accumulations grow with the data.
TOLERANCE = 1e-5


@dataclass
class Timing:
    """Median and spread (interquartile range) of one call, in seconds."""

    median_s: float
    iqr_s: float


@dataclass
class OpCheck:
    """One op's parity and timings on one input."""

    op: str
    size: str
    max_abs_diff: float | None  # scaled as TOLERANCE; None when no compiled kernel runs
    compiled: Timing | None
    twin: Timing
    best_baseline: str  # the fastest plain-torch contender that agrees within TOLERANCE
    baseline: Timing

    @property
    def ok(self) -> bool:
        return self.max_abs_diff is None or self.max_abs_diff <= TOLERANCE

    @property
    def speedup(self) -> float | None:
        """best baseline time / compiled time."""
        return None if self.compiled is None else self.baseline.median_s / self.compiled.median_s


def measure(fn: Callable[[], object], min_run_time: float = 0.2) -> Timing:
    """Timer.blocked_autorange of ``fn``: median and IQR per call."""
    from torch.utils.benchmark import Timer

    m = Timer("fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time)
    return Timing(m.median, m.iqr)


def _max_diff(a, b) -> float:
    if isinstance(a, (tuple, list)):
        return max(_max_diff(x, y) for x, y in zip(a, b))
    a, b = a.double(), b.double()
    finite = torch.isfinite(b)
    scale = max(1.0, b[finite].abs().max().item() if finite.any() else 0.0)
    if not torch.equal(torch.isnan(a), torch.isnan(b)):
        return float("inf")
    return (a[finite] - b[finite]).abs().max().item() / scale if finite.any() else 0.0


def _inputs(size: int, fold: int, device: str, seed: int) -> dict[str, dict]:
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, randn=False):
        return (torch.randn if randn else torch.rand)(*shape, generator=gen).to(device)

    outputs = 16
    return {
        "blur_path": {"image": rand(3, size, size), "fold": fold},
        "path_accumulate": {"acc": torch.zeros(3, size, size, device=device), "grads": rand(fold, 3, size, size, randn=True),
                            "deriv": rand(fold, 3, size, size, randn=True)},
        "kde_map": {"saliency": rand(size, size) ** 8},
        "lam_objective": {"y": rand(outputs, 3, size, size),
                          "windows": flat_windows([(size // 4, size // 4, max(1, size // 8))], outputs)},
    }


def run_selfcheck(size: int = 64, fold: int = 50, device: str = "cpu", seed: int = 0,
                  min_run_time: float = 0.2) -> list[OpCheck]:
    """Check and time every op on random data of ``size``² pixels.

    The twin is the first baseline; a baseline whose numbers differ from the
    twin's by more than TOLERANCE is not counted as the best.
    """
    dev_type = torch.device(device).type
    results = []
    for op, data in _inputs(size, fold, device, seed).items():
        compiled_call, baselines = op_contenders(op, **data)
        (twin_name, twin_call), *others = baselines.items()
        twin_out = twin_call()
        twin_t = measure(twin_call, min_run_time)
        best, best_t = twin_name, twin_t
        for name, call in others:
            if _max_diff(call(), twin_out) > TOLERANCE:
                continue
            t = measure(call, min_run_time)
            if t.median_s < best_t.median_s:
                best, best_t = name, t
        diff = compiled_t = None
        if has_compiled_kernel(op, dev_type):
            diff = _max_diff(compiled_call(), twin_out)
            compiled_t = measure(compiled_call, min_run_time)
        results.append(OpCheck(op, f"{size}x{size}", diff, compiled_t, twin_t, best, best_t))
    return results


def format_report(results: list[OpCheck]) -> str:
    """One line per check: agreement, compiled and best-baseline medians (± IQR), speed-up."""
    head = (f"{'op':<16} {'size':<8} {'ext vs twin':>11} {'ext ms':>16} {'best plain torch':<30} "
            f"{'ms':>16} {'speed-up':>8}  status")
    lines = [head]
    for r in results:
        diff = "n/a" if r.max_abs_diff is None else f"{r.max_abs_diff:.1e}"
        ext = "n/a" if r.compiled is None else f"{r.compiled.median_s * 1e3:.3f} ±{r.compiled.iqr_s * 1e3:.3f}"
        base = f"{r.baseline.median_s * 1e3:.3f} ±{r.baseline.iqr_s * 1e3:.3f}"
        speed = "n/a" if r.speedup is None else f"{r.speedup:.2f}x"
        status = "ok" if r.ok else f"MISMATCH (> {TOLERANCE:g})"
        lines.append(f"{r.op:<16} {r.size:<8} {diff:>11} {ext:>16} {r.best_baseline:<30} {base:>16} {speed:>8}  {status}")
    return "\n".join(lines)
