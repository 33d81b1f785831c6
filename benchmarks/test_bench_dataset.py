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

FOLD = int(os.environ.get("LAMFAST_BENCH_FOLD", "10"))
K = 16


@pytest.fixture(scope="module")
def edsr():
    torch.manual_seed(0)
    model = EDSR(n_resblocks=16, n_feats=64, scale=4, rgb_range=1.0).eval()
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    windows = [(h, w, 16) for h in range(0, 241, 64) for w in range(0, 241, 64)][:K]  # every 64 px
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
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    counter = iter(range(100))

    def once():
        store = tmp_path / f"s{next(counter)}.sqlite"
        subprocess.run([sys.executable, "-m", "lamfast", "run", str(dataset), "--store", str(store), "--windows",
                        "top:8:16", "--fold", "20", "--no-progress", "--engine", engine], check=True,
                       capture_output=True, env=env, timeout=900)

    benchmark.pedantic(once, rounds=2, iterations=1)
    benchmark.extra_info["windows_per_s"] = 64 / benchmark.stats.stats.min


# ---- P8: a two-model comparison, local vs Ray, and the report ----------------------------------------

N_IMAGES, K_WINDOWS, LR_SIZE = 20, 8, 128


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """20 LR crops (128²) of the bundled photos and two x4 models: the bundled TinySR and a small EDSR."""
    folder = tmp_path_factory.mktemp("lr128")
    rng = torch.Generator().manual_seed(0)
    photos = [Image.open(data_path(name)).convert("RGB") for name in ("astronaut.png", "coffee.png")]
    for i in range(N_IMAGES):
        photo = photos[i % 2]
        left = int(torch.randint(0, photo.width - LR_SIZE, (1,), generator=rng))
        top = int(torch.randint(0, photo.height - LR_SIZE, (1,), generator=rng))
        photo.crop((left, top, left + LR_SIZE, top + LR_SIZE)).save(folder / f"lr{i:02d}.png")
    torch.manual_seed(0)
    edsr = folder.parent / "edsr_4x32.pt"
    torch.save(EDSR(n_resblocks=4, n_feats=32, scale=4, rgb_range=1.0).state_dict(), edsr)
    return folder, ["bundled", str(edsr)]


@pytest.mark.benchmark(group="comparison-20img-8win-2models-128px")
@pytest.mark.parametrize("engine", ["local", "ray"])
def test_comparison_windows_per_s(benchmark, comparison, tmp_path, engine):
    if engine == "ray":
        pytest.importorskip("ray.data", reason="Ray Data is the optional [ray] extra")
    folder, models = comparison
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    counter = iter(range(100))

    def once():
        store = tmp_path / f"c{next(counter)}.sqlite"
        cmd = [sys.executable, "-m", "lamfast", "run", str(folder), "--lr-input", "--windows", f"top:{K_WINDOWS}:16",
               "--store", str(store), "--no-progress", "--engine", engine]
        for m in models:
            cmd += ["--model", m]
        if engine == "ray":
            cmd += ["--ray-actors", "2"]
        subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=1800)
        return store

    store = benchmark.pedantic(once, rounds=1, iterations=1)
    windows = N_IMAGES * K_WINDOWS * len(models)
    benchmark.extra_info["windows"] = windows
    benchmark.extra_info["windows_per_s"] = windows / benchmark.stats.stats.min
    if engine == "local":
        from lamfast.dataset import write_report

        import time as _time

        start = _time.perf_counter()
        write_report(store, tmp_path / "report")
        benchmark.extra_info["report_seconds_320_windows"] = _time.perf_counter() - start


@pytest.mark.benchmark(group="report-2000-windows")
def test_report_build_2000_windows(benchmark, tmp_path):
    """The report of a store with 2,240 windows (2 models; 64² maps; images absent, so no PNGs)."""
    import json

    import numpy as np

    from lamfast.dataset import write_report
    from lamfast.dataset.store import ResultStore, UnitRecord, encode_map

    rng = np.random.default_rng(0)
    blob, shape = encode_map(rng.random((3, 64, 64)).astype(np.float32))
    store = tmp_path / "big.sqlite"
    with ResultStore(store) as db:
        for u in range(140):
            key = f"img{u // 2}.png|m{u % 2}|p"
            rows = [{"key": f"{key}|{i}", "unit_key": key, "image": f"img{u // 2}.png", "model": f"m{u % 2}",
                     "h": i, "w": i, "size": 16, "params_hash": "p", "params": json.dumps({"fold": 50}),
                     "status": "ok", "di": float(rng.random() * 10), "gini": 0.5, "nan_steps": 0, "scale": 4,
                     "attribution": blob, "attribution_shape": shape, "seconds": 0.1, "timings": "{}"}
                    for i in range(16)]
            db.write_unit(UnitRecord(key, f"img{u // 2}.png", f"m{u % 2}", "p", "ok", rows=rows))
    benchmark.pedantic(write_report, args=(store, tmp_path / "r"), rounds=3, iterations=1)
