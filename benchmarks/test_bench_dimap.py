"""DI maps: a 16x16 grid of 16-px windows on the bundled astronaut's 64x64 LR crop, against one
``lamfast.lam`` call per window.

Each measurement is its own process (``dimap_worker.py``, 2 threads through OMP_NUM_THREADS; a
warm-up call first). Grid and single runs alternate within every round; the TinySR rounds run quiet
and with one core kept busy. The EDSR-baseline (16x64, random init) reaches past the 64x64 image,
so every window runs the whole image with shared forwards; its grid takes tens of minutes at fold
50 on 2 cores, so it is measured at fold 10, single and grid alike. Written to
``benchmarks/results/dimap_cpu_2cores.json``.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from test_bench_ext import busy_core
from test_bench_readme import _cpu

WORKER = Path(__file__).resolve().parent / "dimap_worker.py"
OUT = Path(__file__).resolve().parent / "results" / "dimap_cpu_2cores.json"
ROUNDS = int(os.environ.get("LAMFAST_BENCH_DIMAP_ROUNDS", "3"))
RESULTS: dict = {}


def _run(*args: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    env.pop("LAMFAST_DISABLE_EXT", None)
    out = subprocess.run([sys.executable, str(WORKER), *args], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _spread(values: list[float]) -> dict:
    return {"median_s": statistics.median(values), "min_s": min(values), "max_s": max(values), "runs_s": values}


def _write() -> None:
    # merge: a rerun of one test (``-k edsr``) keeps the other tests' figures
    if OUT.is_file():
        RESULTS.update({k: v for k, v in json.loads(OUT.read_text()).items() if k not in RESULTS})
    RESULTS["machine"] = {"cpu": _cpu(), "cores": os.cpu_count(), "torch": torch.__version__,
                          "capability": torch.backends.cpu.get_cpu_capability(), "threads": 2}
    OUT.write_text(json.dumps(RESULTS, indent=2) + "\n")


@pytest.mark.parametrize("busy", [False, True], ids=["quiet", "one_core_busy"])
def test_tinysr_grid_against_single_calls(benchmark, busy):
    def rounds():
        grid, single, info = [], [], {}
        with busy_core(busy):
            for r in range(ROUNDS):
                for kind in (("grid", "single") if r % 2 == 0 else ("single", "grid")):
                    res = _run("tinysr", kind)
                    (grid if kind == "grid" else single).append(res["seconds"])
                    info[kind] = res
        per_window = [g / info["grid"]["windows"] for g in grid]
        return {"grid_256_windows": _spread(grid), "single_lam_call": _spread(single),
                "grid_per_window": _spread(per_window),
                "single_over_grid_per_window": statistics.median(s / p for s, p in zip(single, per_window)),
                "cropped_windows": info["grid"]["cropped"], "mean_di": info["grid"]["mean_di"]}

    RESULTS[f"tinysr_fold50_{'one_core_busy' if busy else 'quiet'}"] = benchmark.pedantic(rounds, rounds=1,
                                                                                          iterations=1)
    _write()


def test_edsr_baseline_grid_against_single_calls(benchmark):
    def once():
        single = _run("edsr_baseline", "single", "10")
        grid = _run("edsr_baseline", "grid", "10")
        per_window = grid["seconds"] / grid["windows"]
        return {"grid_256_windows_s": grid["seconds"], "single_lam_call_s": single["seconds"],
                "grid_per_window_s": per_window, "single_over_grid_per_window": single["seconds"] / per_window,
                "cropped_windows": grid["cropped"], "mean_di": grid["mean_di"]}

    RESULTS["edsr_baseline_fold10_quiet"] = benchmark.pedantic(once, rounds=1, iterations=1)
    _write()
