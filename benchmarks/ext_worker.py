"""One measuring process of ``test_bench_ext.py``; prints one JSON object.

    python benchmarks/ext_worker.py ops THREADS [OP]     # every op (or OP) vs its plain-torch baselines
    python benchmarks/ext_worker.py lam CASE RUNS        # one whole-LAM case, RUNS timed runs after a warm-up
    python benchmarks/ext_worker.py share CASE           # the part of one LAM call's CPU time in lamfast's ops

The extension is on or off for the whole process (``LAMFAST_DISABLE_EXT``),
so compiled and twin LAM runs are separate processes, interleaved by the
caller. Setting torch's thread count here is the benchmark's own choice for
its own process; the library never does it.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Callable

import torch

import lamfast
from lamfast.ops.baselines import op_contenders
from lamfast.ops.lam_objective import flat_windows

SIZES = (32, 64, 128, 256, 512)
DTYPES = (torch.float32, torch.float64)
FOLD = 50  # blur_path and path_accumulate steps: the LAM default
OBJ_OUTPUTS = 16  # lam_objective: outputs per call, a chunk of path points
ROUNDS = 5
MIN_MEASURE_S = 0.02


# ---- timing ----------------------------------------------------------------

def _calls_per_measure(fn: Callable[[], object]) -> int:
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, int(MIN_MEASURE_S / once))


def interleaved(contenders: dict[str, Callable[[], object]]) -> dict[str, dict]:
    """Median and spread of each contender's per-call time, all measured in turn each round."""
    from torch.utils.benchmark import Timer

    numbers = {name: _calls_per_measure(fn) for name, fn in contenders.items()}
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(ROUNDS):
        for name, fn in contenders.items():
            times[name].append(Timer("fn()", globals={"fn": fn}).timeit(numbers[name]).mean)
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t)} for name, t in times.items()}


def _err(a, b) -> float:
    if isinstance(a, (tuple, list)):
        return max(_err(x, y) for x, y in zip(a, b))
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1.0)).item()


def op_cases(size: int, dtype: torch.dtype):
    """(op, shape label, compiled call, {baseline: call}) for one size and dtype."""
    gen = torch.Generator().manual_seed(size)

    def rand(*shape, randn=False):
        fn = torch.randn if randn else torch.rand
        return fn(*shape, generator=gen, dtype=torch.float64).to(dtype)

    yield ("blur_path", f"3x{size}x{size} fold {FOLD}", *op_contenders("blur_path", image=rand(3, size, size), fold=FOLD))
    yield ("path_accumulate", f"{FOLD}x3x{size}x{size}",
           *op_contenders("path_accumulate", acc=torch.zeros(3, size, size, dtype=dtype),
                          grads=rand(FOLD, 3, size, size, randn=True), deriv=rand(FOLD, 3, size, size, randn=True)))
    for batch in (1, 8):
        yield ("kde_map", f"{batch}x{size}x{size}", *op_contenders("kde_map", saliency=rand(batch, size, size) ** 8))
    windows = flat_windows([(size // 4, size // 4, max(1, size // 8))], OBJ_OUTPUTS)
    yield ("lam_objective", f"{OBJ_OUTPUTS}x3x{size}x{size} fwd+bwd",
           *op_contenders("lam_objective", y=rand(OBJ_OUTPUTS, 3, size, size), windows=windows))


def machine() -> str:
    """The CPU the figures come from: the kernels' clones (csrc/cpu/simd.h) and torch's own kernels differ by ISA."""
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 "unknown CPU") if sys.platform.startswith("linux") else "unknown CPU"
    return f"{model}, torch CPU capability {torch.backends.cpu.get_cpu_capability()}"


def run_ops(threads: int, only: str | None = None) -> dict:
    torch.set_num_threads(threads)
    rows = []
    for size in SIZES:
        for dtype in DTYPES:
            for op, shape, compiled, baselines in op_cases(size, dtype):
                if only is not None and op != only:
                    continue
                reference = compiled()
                errors = {name: _err(fn(), reference) for name, fn in baselines.items()}
                times = interleaved({"compiled": compiled, **baselines})
                best = min(baselines, key=lambda name: times[name]["median_s"])
                rows.append({
                    "op": op, "size": size, "shape": shape, "dtype": str(dtype).replace("torch.", ""),
                    "threads": threads, "times": times, "baseline_err_vs_compiled": errors, "best_baseline": best,
                    "speedup_vs_best": times[best]["median_s"] / times["compiled"]["median_s"],
                })
                print(f"{op:16s} {shape:28s} {rows[-1]['dtype']:8s} t{threads} "
                      f"x{rows[-1]['speedup_vs_best']:.2f} vs {best}", file=sys.stderr, flush=True)
    return {"threads": threads, "extension": lamfast.ext_available(), "cpu": machine(), "rows": rows}


# ---- whole LAM -------------------------------------------------------------

def lam_case(name: str):
    """(call, description) of one whole-LAM case."""
    if name == "edsr_4x32_64_off":
        from lamfast.models import EDSR

        torch.manual_seed(0)
        model = EDSR(n_resblocks=4, n_feats=32, scale=4, rgb_range=1.0).eval()
        image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
        return (lambda: lamfast.lam(model, image, 120, 100, 16, fold=20, crop="off"),
                "EDSR 4 blocks x 32, x4, 64² LR, fold 20, crop off")
    if name.startswith("edsr_baseline_"):  # the README's crop table: one 16-px window in the middle, defaults
        from lamfast.models import EDSR

        size = int(name.rpartition("_")[2])
        torch.manual_seed(0)
        model = EDSR(n_resblocks=16, n_feats=64, scale=4, rgb_range=1.0).eval()
        image = torch.rand(3, size, size, generator=torch.Generator().manual_seed(0))
        mid = size * 4 // 2 - 8
        return (lambda: lamfast.lam(model, image, mid, mid, 16), f"EDSR-baseline 16x64 x4, {size}² LR, one window")
    if name == "tinysr_160_crop":
        from lamfast.imageio import read_rgb, to_tensor
        from lamfast.models import bundled_model, data_path

        model = bundled_model().model
        image = to_tensor(read_rgb(str(data_path("astronaut.png")))[0].crop((48, 16, 208, 176)))
        return (lambda: lamfast.lam(model, image, 300, 300, 16),
                "bundled TinySR x4, 160² LR (astronaut), fold 50, crops on")
    raise SystemExit(f"unknown case {name!r}")


def _minor_faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def run_lam(name: str, runs: int) -> dict:
    call, description = lam_case(name)
    result = call()  # warm-up: allocator, thread pool, reach cache
    times, faults = [], []
    for _ in range(runs):
        before = _minor_faults()
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
        # pages the allocator gave back and took again: the model's large activations are freed to the OS and
        # faulted in anew each run, in a count that varies from run to run (the noise in whole-LAM timings)
        faults.append(_minor_faults() - before)
    return {"case": name, "description": description, "extension": lamfast.ext_available(), "times_s": times,
            "minor_faults": faults,
            "di": result.di, "batch_size": result.batch_size, "crop": None if result.crop.box is None else list(result.crop.box)}


def op_share(name: str) -> dict:
    """Of one LAM call's CPU time (torch.profiler, self time), the part spent in lamfast's ops: a bound on what
    the extension can change in that case."""
    from torch.profiler import ProfilerActivity, profile

    call, _ = lam_case(name)
    call()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        call()
    events = prof.events()
    total = sum(e.self_cpu_time_total for e in events)

    def outermost(e) -> bool:  # a lamfast op not inside another (the twins' aten calls count with their op)
        parent = e.cpu_parent
        while parent is not None:
            if "lamfast" in parent.name:
                return False
            parent = parent.cpu_parent
        return "lamfast" in e.name

    ours = sum(e.cpu_time_total for e in events if outermost(e))
    return {"case": name, "extension": lamfast.ext_available(), "total_ms": total / 1e3, "lamfast_ops_ms": ours / 1e3,
            "share": ours / total}


if __name__ == "__main__":
    if sys.argv[1] == "ops":
        out = run_ops(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
    elif sys.argv[1] == "share":
        out = op_share(sys.argv[2])
    elif sys.argv[1] == "lam":
        out = run_lam(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(__doc__)
    print(json.dumps(out))
