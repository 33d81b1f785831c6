"""Dataset scale: windows per second.

- K = 16 windows of one 64² image on an EDSR-sized x4 model (64 channels,
  16 blocks): ``lam_windows`` vs ``lamfast.lam`` per window. Target >= 2x
  on CPU at 1 thread (``LAMFAST_BENCH_THREADS=1``). ``LAMFAST_BENCH_FOLD``
  sets the path length (default 10 here; the ratio does not depend on it).
- Ray engine overhead: the same small dataset (bundled model) through
  ``lamfast run`` with ``--engine local`` and ``--engine ray`` (2 CPUs).
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

import lamfast
from lamfast.models import EDSR, data_path
from lamfast.lam import lam_windows
from lamfast.lam.windows import grid

FOLD = int(os.environ.get("LAMFAST_BENCH_FOLD", "10"))
K = 16


@pytest.fixture(scope="module")
def edsr():
    torch.manual_seed(0)
    model = EDSR(n_resblocks=16, n_feats=64, scale=4, rgb_range=1.0).eval()
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    windows = grid((256, 256), 16, 64)[:K]
    return model, image, windows


@pytest.mark.benchmark(group="windows-K16-edsr64x16")
def test_lam_windows(benchmark, edsr):
    model, image, windows = edsr
    benchmark.pedantic(lam_windows, args=(model, image, windows), kwargs={"fold": FOLD}, rounds=2, iterations=1)
    benchmark.extra_info["windows_per_s"] = K / benchmark.stats.stats.min


@pytest.mark.benchmark(group="windows-K16-edsr64x16")
def test_lam_per_window(benchmark, edsr):
    model, image, windows = edsr

    def per_window():
        return [lamfast.lam(model, image, h, w, s, fold=FOLD) for h, w, s in windows]

    benchmark.pedantic(per_window, rounds=2, iterations=1)
    benchmark.extra_info["windows_per_s"] = K / benchmark.stats.stats.min


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    astro = Image.open(data_path("astronaut.png"))
    for i in range(8):
        astro.crop((i * 16, i * 12, i * 16 + 128, i * 12 + 128)).save(folder / f"img{i}.png")
    return folder


@pytest.mark.benchmark(group="dataset-engine")
@pytest.mark.parametrize("engine", ["local", "ray"])
def test_engine(benchmark, dataset, tmp_path, engine):
    if engine == "ray":
        pytest.importorskip("ray.data", reason="Ray Data is the optional [ray] extra")
    env = {**os.environ, "LAMFAST_RAY_CPUS": "2", "RAY_USAGE_STATS_ENABLED": "0"}
    counter = iter(range(100))

    def once():
        store = tmp_path / f"s{next(counter)}.sqlite"
        subprocess.run([sys.executable, "-m", "lamfast", "run", str(dataset), "--store", str(store), "--windows",
                        "top:8:16", "--fold", "20", "--no-progress", "--engine", engine], check=True,
                       capture_output=True, env=env, timeout=900)

    benchmark.pedantic(once, rounds=2, iterations=1)
    benchmark.extra_info["windows_per_s"] = 64 / benchmark.stats.stats.min
