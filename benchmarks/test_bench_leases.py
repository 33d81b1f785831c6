"""What the leases cost one worker alone: ``lamfast.dataset.run`` with its default 60 s leases
(a claim per unit, the heartbeat thread) against ``lease_seconds=None``, on the bundled TinySR.

- ``small_units``: 48 HR crops of 64² (16² LR), ``top:1:16``, fold 2: a few ms per unit, so the
  claim's share is the largest it gets.
- ``typical``: 8 HR crops of 128², ``top:8:16``, fold 50.

Each run is its own process (``lease_worker.py``, OMP_NUM_THREADS=2, a warm-up run first, a fresh
store); the two alternate within every round, quiet and with one core kept busy. Written to
``benchmarks/results/leases_cpu_2cores.json``.
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
from PIL import Image

from lamfast.models import data_path
from test_bench_ext import busy_core
from test_bench_readme import _cpu

WORKER = Path(__file__).resolve().parent / "lease_worker.py"
OUT = Path(__file__).resolve().parent / "results" / "leases_cpu_2cores.json"
ROUNDS = int(os.environ.get("LAMFAST_BENCH_LEASE_ROUNDS", "5"))
CASES = {"small_units": (48, 64, "top:1:16", 2), "typical": (8, 128, "top:8:16", 50)}
RESULTS: dict = {}


def _images(folder: Path, n: int, size: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    astro = Image.open(data_path("astronaut.png"))
    for i in range(n):
        x, y = (i * 29) % (256 - size), (i * 17) % (256 - size)
        astro.crop((x, y, x + size, y + size)).save(folder / f"img{i:02d}.png")
    return folder


def _run(images: Path, store: Path, leases: str, windows: str, fold: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, str(WORKER), str(images), str(store), leases, windows, str(fold)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _spread(values: list[float]) -> dict:
    return {"median_s": statistics.median(values), "min_s": min(values), "max_s": max(values), "runs_s": values}


@pytest.mark.parametrize("busy", [False, True], ids=["quiet", "one_core_busy"])
@pytest.mark.parametrize("case", list(CASES))
def test_lease_overhead(benchmark, tmp_path, case, busy):
    n, size, windows, fold = CASES[case]
    images = _images(tmp_path / "imgs", n, size)

    def rounds():
        times: dict[str, list[float]] = {"on": [], "off": []}
        units = None
        with busy_core(busy):
            for r in range(ROUNDS):
                for leases in (("on", "off") if r % 2 == 0 else ("off", "on")):
                    res = _run(images, tmp_path / f"{leases}{r}.sqlite", leases, windows, fold)
                    times[leases].append(res["seconds"])
                    units = res["units"]
        ratios = [a / b for a, b in zip(times["on"], times["off"])]
        return {"images": n, "hr_size": size, "windows": windows, "fold": fold, "units": units,
                "with_leases": _spread(times["on"]), "without_leases": _spread(times["off"]),
                "ratio_per_round": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)},
                "per_unit_ms_median": 1e3 * (statistics.median(times["on"]) - statistics.median(times["off"])) / units}

    RESULTS[f"{case}_{'one_core_busy' if busy else 'quiet'}"] = benchmark.pedantic(rounds, rounds=1, iterations=1)
    if OUT.is_file():
        RESULTS.update({k: v for k, v in json.loads(OUT.read_text()).items() if k not in RESULTS})
    RESULTS["machine"] = {"cpu": _cpu(), "cores": os.cpu_count(), "torch": torch.__version__, "threads": 2}
    OUT.write_text(json.dumps(RESULTS, indent=2) + "\n")
