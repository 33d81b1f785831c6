"""The README's EDSR-baseline seconds per window, with the machine and the spread.

Each measurement is its own process (``ext_worker.py lam edsr_baseline_SIZE 1``:
a warm-up call, then one timed call), the sizes alternate in every round, and
the rounds run quiet and with one core kept busy. Written to
``benchmarks/results/readme_edsr_cpu_2cores.json``.
"""
from __future__ import annotations

import json
import platform
import statistics
from pathlib import Path

import pytest
import torch

from test_bench_ext import ROUNDS, _worker, busy_core

SIZES = (64, 128)
OUT = Path(__file__).resolve().parent / "results" / "readme_edsr_cpu_2cores.json"
RESULTS: dict = {}


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


@pytest.mark.parametrize("busy", [False, True], ids=["quiet", "one_core_busy"])
def test_readme_edsr_seconds_per_window(benchmark, busy):
    def rounds():
        times = {size: [] for size in SIZES}
        with busy_core(busy):
            for r in range(ROUNDS):
                for size in (SIZES if r % 2 == 0 else SIZES[::-1]):
                    times[size].append(_worker("lam", f"edsr_baseline_{size}", "1")["times_s"][0])
        return {f"{size}px": {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "runs_s": t}
                for size, t in times.items()}

    data = benchmark.pedantic(rounds, rounds=1, iterations=1)
    RESULTS["one_core_busy" if busy else "quiet"] = data
    RESULTS["machine"] = {"cpu": _cpu(), "cores": __import__("os").cpu_count(), "torch": torch.__version__,
                          "capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}
    OUT.write_text(json.dumps(RESULTS, indent=2) + "\n")
