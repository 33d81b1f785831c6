"""One benchmark record for a GPU machine: every figure the GPU issue asks for, as JSON.

    python benchmarks/gpu_record.py --out gpu.json [--tests-junit a.xml ...] [--quick]

Figures (targets in the README's GPU table and in the closing notes, never
asserted here):

- ``lam_*``: ``lamfast.lam`` at defaults (fold 50, crop auto) on EDSR-baseline
  x4 (16 blocks x 64), 128² LR, one 16-px window, against the official LAM
  loop's cost on the same GPU (batch 1 per step, parameters requiring grad,
  per-step host copies; the blur path is given to it for free). Warm times
  (best of ``rounds``, interleaved) and the first, cold call (reach probe,
  cuDNN autotuning). Also the GPU-vs-CPU parity of that LAM with TF32 at
  PyTorch's default and with TF32 off.
- ``dataset_*``: ``lamfast run`` over 100 images x 16 windows (64² LR crops of
  scikit-image's bundled photos), EDSR-baseline x4, defaults, into a SQLite
  store; wall time of the whole command (process start and model load
  included).
- ``cam_*``: GradCAM on timm resnet50 (random init), batch 32, 224², against
  pytorch-grad-cam on the same model and input.
- ``ig_*``: Integrated Gradients, resnet50, 50 steps, batch 8: lamfast at
  defaults against captum at its best ``internal_batch_size``.
- ``kde_*``: ``lamfast.kde_map`` at 256² on the GPU against scipy's weighted
  ``gaussian_kde`` (one CPU thread, run in a side process meanwhile).

Peak GPU memory is reset before and read after each measured call.
``--quick`` shrinks every size so the script itself can be checked on a CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))

import lamfast  # noqa: E402
from lamfast.models import EDSR  # noqa: E402

from lam_cost import official_cost_loop  # noqa: E402
from lamfast.optional import import_optional  # noqa: E402

GIB = float(1 << 30)


def log(msg: str) -> None:
    print(f"[gpu_record {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Clock:
    """Wall time of calls on ``device``, synchronised, with the peak memory of each."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def once(self, fn):
        """(seconds, peak GiB or None, result)."""
        self.sync()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        out = fn()
        self.sync()
        elapsed = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(self.device) / GIB if self.device.type == "cuda" else None
        return elapsed, peak, out

    def rounds(self, contenders: dict, rounds: int) -> dict:
        """Each contender once per round, in turn (drift cancels in per-round ratios)."""
        times = {k: [] for k in contenders}
        peaks = {k: 0.0 for k in contenders}
        for _ in range(rounds):
            for name, fn in contenders.items():
                t, p, _ = self.once(fn)
                times[name].append(t)
                peaks[name] = max(peaks[name], p or 0.0)
        return {k: {"min_s": min(v), "median_s": statistics.median(v), "all_s": v, "peak_memory_gib": peaks[k]}
                for k, v in times.items()}


def per_round_ratio(times: dict, num: str, den: str) -> float:
    return statistics.median(a / b for a, b in zip(times[num]["all_s"], times[den]["all_s"]))


def max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def edsr_baseline(device) -> torch.nn.Module:
    torch.manual_seed(0)
    return EDSR(n_resblocks=16, n_feats=64, scale=4, rgb_range=1.0).eval().to(device)


def photo_crops(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """n RGB crops (uint8, size x size) of scikit-image's bundled photos, at random places and scales."""
    from skimage import data, transform

    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
             "colorwheel", "logo"]
    photos = []
    for name in names:
        try:
            img = getattr(data, name)()
        except Exception:  # noqa: BLE001 - a photo this scikit-image lacks is skipped
            continue
        if img.ndim == 3 and img.shape[2] >= 3 and min(img.shape[:2]) >= 2 * size:
            photos.append(img[..., :3])
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = photos[i % len(photos)]
        f = rng.uniform(0.25, 1.0) * min(img.shape[:2]) / size
        side = max(size, int(size * min(f, min(img.shape[:2]) / size)))
        r = rng.integers(0, img.shape[0] - side + 1)
        c = rng.integers(0, img.shape[1] - side + 1)
        crop = transform.resize(img[r:r + side, c:c + side], (size, size), anti_aliasing=True)
        out.append((crop * 255).round().astype(np.uint8))
    return out


# ---------------------------------------------------------------------------------------------------


def bench_lam(device, quick: bool) -> dict:
    lr, fold, rounds = (32, 10, 2) if quick else (128, 50, 5)
    size = 16
    model = edsr_baseline(device)
    image = torch.from_numpy(photo_crops(1, lr, seed=1)[0]).permute(2, 0, 1).float().div(255).to(device)
    h = w = 2 * lr - size // 2  # the window in the middle of the x4 output
    clock = Clock(device)
    log(f"LAM: EDSR-baseline x4, {lr}² LR, fold {fold}, window ({h},{w},{size})")
    cold_t, cold_peak, res = clock.once(lambda: lamfast.lam(model, image, h, w, size, fold=fold))
    path, deriv = lamfast.blur_path(image.cpu(), fold)  # the official path lives on the host

    def official():
        out = official_cost_loop(model, path, deriv, h, w, size)
        for p in model.parameters():
            p.requires_grad_(False)
        return out

    # the official loop's first call also pays cuDNN's batch-1 autotuning: run it once untimed
    official()
    times = clock.rounds({"lamfast": lambda: lamfast.lam(model, image, h, w, size, fold=fold),
                          "official": official}, rounds)
    warm = lamfast.lam(model, image, h, w, size, fold=fold)
    official_attr = torch.from_numpy(official())
    rec = {
        "lam_model": "EDSR-baseline x4 (16 blocks x 64 channels), random init",
        "lam_lr_size": lr, "lam_fold": fold, "lam_window": [h, w, size], "lam_rounds": rounds,
        "lam_seconds": times["lamfast"]["min_s"], "lam_seconds_median": times["lamfast"]["median_s"],
        "lam_seconds_cold": cold_t, "lam_peak_memory_gib": max(times["lamfast"]["peak_memory_gib"], cold_peak or 0),
        "official_seconds": times["official"]["min_s"], "official_seconds_median": times["official"]["median_s"],
        "official_peak_memory_gib": times["official"]["peak_memory_gib"],
        "lam_speedup_vs_official": times["official"]["min_s"] / times["lamfast"]["min_s"],
        "lam_speedup_vs_official_median_of_rounds": per_round_ratio(times, "official", "lamfast"),
        "lam_speedup_vs_official_cold": times["official"]["min_s"] / cold_t,
        "lam_batch_size": warm.batch_size, "lam_crop": warm.crop.summary(), "lam_timings": warm.timings,
        "lam_vs_official_attribution_max_rel": max_rel(warm.attribution, official_attr),
    }
    if device.type == "cuda":
        # channels_last weights: cuDNN's NHWC kernels, often faster for convs under TF32
        import copy

        cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        lamfast.lam(cl, image, h, w, size, fold=fold)
        rec["lam_seconds_channels_last_model"] = min(
            clock.once(lambda: lamfast.lam(cl, image, h, w, size, fold=fold))[0] for _ in range(3))
        del cl
    # parity: the GPU at PyTorch's TF32 default, the GPU without TF32, and the CPU (float32)
    if device.type == "cuda":
        cpu = lamfast.lam(model.cpu(), image.cpu(), h, w, size, fold=fold)
        model.to(device)
        prev = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            strict = lamfast.lam(model, image, h, w, size, fold=fold)
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = prev
        rec["lam_parity_gpu_vs_cpu"] = {
            "tf32_default": {"cudnn_allow_tf32": prev[0], "matmul_allow_tf32": prev[1],
                             "attribution_max_rel": max_rel(warm.attribution, cpu.attribution),
                             "saliency_max_abs": float((warm.saliency.cpu() - cpu.saliency).abs().max()),
                             "di_abs": abs(warm.di - cpu.di)},
            "tf32_off": {"attribution_max_rel": max_rel(strict.attribution, cpu.attribution),
                         "saliency_max_abs": float((strict.saliency.cpu() - cpu.saliency).abs().max()),
                         "di_abs": abs(strict.di - cpu.di)},
            "di_cpu": cpu.di, "di_gpu": warm.di,
        }
    log(f"LAM: lamfast {rec['lam_seconds']:.3f} s, official {rec['official_seconds']:.3f} s, "
        f"{rec['lam_speedup_vs_official']:.1f}x")
    return rec


def bench_windows(device, quick: bool) -> dict:
    """K = 16 windows of one 64² image (the dataset's unit): where the time goes."""
    from lamfast.lam import lam_windows
    from lamfast.lam.objective import window_objectives
    from lamfast.modelstate import attribution_state
    from lamfast.path import integrate_path

    lr, k, fold = (24, 4, 5) if quick else (64, 16, 50)
    model = edsr_baseline(device)
    image = torch.from_numpy(photo_crops(1, lr, seed=3)[0]).permute(2, 0, 1).float().div(255).to(device)
    windows = [(h, w, 16) for h in range(0, 3 * lr + 1, lr) for w in range(0, 3 * lr + 1, lr)][:k]  # every lr px
    clock = Clock(device)
    lam_windows(model, image, windows, fold=fold)
    t, peak, res = clock.once(lambda: lam_windows(model, image, windows, fold=fold))
    rec = {"windows_lr_size": lr, "windows_k": k, "windows_fold": fold, "windows_seconds": t,
           "windows_per_s": k / t, "windows_peak_memory_gib": peak, "windows_batch_size": res[0].batch_size,
           "windows_crop": res[0].crop.summary(), "windows_timings": res[0].timings}
    path, deriv = lamfast.blur_path(image, fold)

    def objective(points, chunk):
        return window_objectives(model(points), windows, "compat")

    with attribution_state(model):
        fwd = clock.once(lambda: [model(path[i:i + 26]) for i in range(0, fold, 26)] and None)
        with torch.no_grad():
            rec["windows_forward_only_seconds"] = clock.once(lambda: model(path))[0]
        rec["windows_forward_with_graph_seconds"] = fwd[0]
        integrate_path(objective, path[None], deriv[None], batch_size=26)
        tt, pk, _ = clock.once(lambda: integrate_path(objective, path[None], deriv[None], batch_size=26))
        rec["windows_path_seconds"] = tt  # one backward per window (batched backwards measured slower)
        rec["windows_path_peak_gib"] = pk
    log(f"windows: {k} windows in {t:.3f} s; " + ", ".join(f"{key[-14:]} {v:.3f}" for key, v in rec.items()
                                                            if key.startswith("windows_path_seconds")
                                                            and isinstance(v, float)))
    return rec


def bench_dataset(device, quick: bool, workdir: Path) -> dict:
    n, lr, k = (4, 24, 4) if quick else (100, 64, 16)
    from PIL import Image

    imgs = workdir / "lr"
    imgs.mkdir(parents=True, exist_ok=True)
    for i, arr in enumerate(photo_crops(n, lr, seed=2)):
        Image.fromarray(arr).save(imgs / f"img{i:03d}.png")
    ckpt = workdir / "edsr_baseline_x4.pt"
    torch.save(edsr_baseline("cpu").state_dict(), ckpt)
    store = workdir / "store.sqlite"
    cmd = [sys.executable, "-m", "lamfast", "run", str(imgs), "--model", f"edsr:{ckpt}", "--lr-input",
           "--windows", f"top:{k}:16", "--store", str(store), "--no-progress", "--device", str(device)]
    if quick:
        cmd += ["--fold", "5"]
    log(f"dataset: {' '.join(cmd[3:])}")
    start = time.perf_counter()
    limit = float(os.environ.get("GPU_RECORD_DATASET_TIMEOUT", "600"))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
        rc, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, stderr = f"killed after {limit:.0f} s", (exc.stderr or b"").decode(errors="replace")
    elapsed = time.perf_counter() - start
    import sqlite3

    windows = 0
    with sqlite3.connect(store) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        for t in tables:
            cols = [r[1] for r in db.execute(f"pragma table_info({t})")]
            if "di" in cols:
                windows = max(windows, db.execute(f"select count(*) from {t} where di is not null").fetchone()[0])
    rec = {"dataset_images": n, "dataset_lr_size": lr, "dataset_windows_per_image": k,
           "dataset_command": " ".join(["lamfast"] + cmd[3:]), "dataset_exit_code": rc,
           "dataset_seconds": elapsed, "dataset_windows_done": windows,
           "dataset_windows_per_s": windows / elapsed if elapsed > 0 else None,
           "dataset_stderr_tail": stderr[-1500:]}
    log(f"dataset: rc {rc}, {windows} windows in {elapsed:.1f} s")
    return rec


def resnet50(device):
    timm = import_optional("timm", "the benchmark")
    torch.manual_seed(0)
    return timm.create_model("resnet50", pretrained=False).eval().to(device)


def bench_cam(device, quick: bool) -> dict:
    batch, size, rounds = (2, 64, 2) if quick else (32, 224, 7)
    import lamfast.cam as cams

    pgc = import_optional("pytorch_grad_cam", "the benchmark")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = resnet50(device)
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    ours = cams.GradCAM(model, [model.layer4])
    theirs = pgc.GradCAM(model, [model.layer4])
    targets = [ClassifierOutputTarget(0)] * batch
    clock = Clock(device)
    ours(x, [0]), theirs(x, targets)  # warm-up: cuDNN autotuning, allocator
    def forward():
        with torch.no_grad():
            return model(x)

    times = clock.rounds({"lamfast": lambda: ours(x, [0]), "pytorch-grad-cam": lambda: theirs(x, targets),
                          "forward": forward}, rounds)
    diff = float(np.abs(ours(x, [0]).cpu().numpy() - theirs(x, targets)).max())
    ours.release()
    theirs.activations_and_grads.release()
    rec = {"cam_model": "timm resnet50, random init", "cam_batch": batch, "cam_size": size,
           "cam_seconds": times["lamfast"]["min_s"], "cam_pytorch_grad_cam_seconds": times["pytorch-grad-cam"]["min_s"],
           "cam_speedup_vs_pytorch_grad_cam": times["pytorch-grad-cam"]["min_s"] / times["lamfast"]["min_s"],
           "cam_speedup_median_of_rounds": per_round_ratio(times, "pytorch-grad-cam", "lamfast"),
           "cam_forward_only_seconds": times["forward"]["min_s"],
           "cam_seconds_over_forward": times["lamfast"]["min_s"] / times["forward"]["min_s"],
           "cam_peak_memory_gib": times["lamfast"]["peak_memory_gib"],
           "cam_pytorch_grad_cam_peak_memory_gib": times["pytorch-grad-cam"]["peak_memory_gib"],
           "cam_max_abs_diff_vs_pytorch_grad_cam": diff}
    log(f"CAM: lamfast {rec['cam_seconds'] * 1e3:.1f} ms, pgc {rec['cam_pytorch_grad_cam_seconds'] * 1e3:.1f} ms")
    return rec


def bench_ig(device, quick: bool) -> dict:
    batch, size, steps, rounds = (2, 64, 8, 2) if quick else (8, 224, 50, 3)
    from captum.attr import IntegratedGradients as CaptumIG

    from lamfast.attr import IntegratedGradients

    model = resnet50(device)
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    clock = Clock(device)
    ours = IntegratedGradients(model)
    theirs = CaptumIG(model)
    for p in model.parameters():  # captum leaves parameters as they are: freeze them, as lamfast does
        p.requires_grad_(False)
    clock.once(lambda: ours.attribute(x, target=0, n_steps=steps))
    # captum at its best internal_batch_size (None = all batch * steps points at once)
    candidates = [c for c in (None, 400, 200, 100, 50, 25) if c is None or c < batch * steps or quick]
    captum_times = {}
    for ibs in candidates:
        try:
            clock.once(lambda: theirs.attribute(x, target=0, n_steps=steps, internal_batch_size=ibs))
            t = min(clock.once(lambda: theirs.attribute(x, target=0, n_steps=steps, internal_batch_size=ibs))[0]
                    for _ in range(2))
            captum_times[str(ibs)] = t
        except torch.OutOfMemoryError:
            captum_times[str(ibs)] = None
            torch.cuda.empty_cache()
    best = min((t, k) for k, t in captum_times.items() if t is not None)[1]
    best_ibs = None if best == "None" else int(best)
    times = clock.rounds({"lamfast": lambda: ours.attribute(x, target=0, n_steps=steps),
                          "captum": lambda: theirs.attribute(x, target=0, n_steps=steps,
                                                             internal_batch_size=best_ibs)}, rounds)
    a = ours.attribute(x, target=0, n_steps=steps)
    b = theirs.attribute(x, target=0, n_steps=steps, internal_batch_size=best_ibs)
    rec = {"ig_model": "timm resnet50, random init", "ig_batch": batch, "ig_size": size, "ig_steps": steps,
           "ig_seconds": times["lamfast"]["min_s"], "ig_captum_seconds": times["captum"]["min_s"],
           "ig_captum_internal_batch_size": best, "ig_captum_seconds_by_internal_batch_size": captum_times,
           "ig_speedup_vs_captum": times["captum"]["min_s"] / times["lamfast"]["min_s"],
           "ig_speedup_median_of_rounds": per_round_ratio(times, "captum", "lamfast"),
           "ig_peak_memory_gib": times["lamfast"]["peak_memory_gib"],
           "ig_captum_peak_memory_gib": times["captum"]["peak_memory_gib"],
           "ig_max_rel_diff_vs_captum": max_rel(a, b)}
    log(f"IG: lamfast {rec['ig_seconds']:.3f} s, captum {rec['ig_captum_seconds']:.3f} s (ibs {best})")
    return rec


SCIPY_KDE = r"""
import json, sys, time
import numpy as np
from scipy import stats
size = int(sys.argv[1])
m = np.load(sys.argv[2])
ys, xs = np.mgrid[0:size, 0:size]
pts = np.vstack([xs.ravel(), ys.ravel()])
start = time.perf_counter()
z = stats.gaussian_kde(pts, weights=m.ravel())(pts).reshape(size, size)
z = z / z.max()
elapsed = time.perf_counter() - start
np.save(sys.argv[3], z)
print(json.dumps({"seconds": elapsed}))
"""


def start_scipy_kde(quick: bool, workdir: Path):
    size = 48 if quick else 256
    sal = torch.rand(size, size, generator=torch.Generator().manual_seed(1)).double() ** 8
    np.save(workdir / "sal.npy", sal.numpy())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SCIPY_KDE, str(size), str(workdir / "sal.npy"),
                             str(workdir / "scipy_kde.npy")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    return proc, sal, size


def bench_kde(device, quick: bool, side) -> dict:
    proc, sal, size = side
    clock = Clock(device)
    s = sal.float().to(device)
    lamfast.kde_map(s)
    runs = [clock.once(lambda: lamfast.kde_map(s)) for _ in range(10)]
    ours = lamfast.kde_map(s)
    out, err = proc.communicate()
    scipy_s = json.loads(out.strip().splitlines()[-1])["seconds"] if proc.returncode == 0 else None
    rec = {"kde_size": size, "kde_seconds": min(r[0] for r in runs), "kde_peak_memory_gib": max(r[1] or 0 for r in runs),
           "kde_scipy_seconds": scipy_s, "kde_scipy_threads": 1,
           "kde_speedup_vs_scipy": scipy_s / min(r[0] for r in runs) if scipy_s else None}
    if scipy_s:
        z = torch.from_numpy(np.load(Path(proc.args[-1])))
        rec["kde_max_abs_diff_vs_scipy"] = float((ours.double().cpu() - z).abs().max())
    else:
        rec["kde_scipy_error"] = err[-500:]
    log(f"KDE: lamfast {rec['kde_seconds'] * 1e3:.2f} ms, scipy {scipy_s} s")
    return rec


def _junit(path: Path) -> tuple[int, int, int, list[str]]:
    """(tests, failed, skipped, ids of the failed) of one pytest --junitxml file."""
    root = ET.parse(path).getroot()
    n = failed = skipped = 0
    ids = []
    for case in root.iter("testcase"):
        n += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            ids.append(f"{case.get('classname')}::{case.get('name')}")
        elif case.find("skipped") is not None:
            skipped += 1
    return n, failed, skipped, ids


def junit_counts(paths: list[str]) -> dict:
    """Test counts per suite. A suite's ``<name>-rerun.xml`` (its failures re-run
    one at a time, see scripts/gpu_session.sh) decides which failures stand;
    those that passed alone are listed as ``failed_only_in_parallel``."""
    total = {"tests_passed": 0, "tests_failed": 0, "tests_skipped": 0, "tests_by_suite": {}}
    for p in map(Path, paths):
        if not p.is_file():
            total["tests_by_suite"][p.stem] = "not run"
            continue
        try:
            n, failed, skipped, ids = _junit(p)
        except (OSError, ET.ParseError) as exc:
            total["tests_by_suite"][p.stem] = f"unreadable: {exc}"
            total["tests_failed"] += 1
            continue
        suite = {"passed": n - failed - skipped, "failed": failed, "skipped": skipped, "failed_ids": ids}
        rerun = p.with_name(p.stem + "-rerun.xml")
        if failed and rerun.is_file():
            _, still, _, still_ids = _junit(rerun)
            suite.update(failed=still, passed=n - still - skipped, failed_ids=still_ids,
                         failed_only_in_parallel=sorted(set(ids) - set(still_ids)))
        total["tests_by_suite"][p.stem] = suite
        total["tests_passed"] += suite["passed"]
        total["tests_failed"] += suite["failed"]
        total["tests_skipped"] += skipped
    return total


def environment(device) -> dict:
    rec = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
           "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
           "lamfast": lamfast.__version__, "extension": lamfast.ext_status(), "cpu_threads": torch.get_num_threads(),
           "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
           "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
           "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        rec["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                       capture_output=True, text=True, timeout=30).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rec["driver"] = None
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tests-junit", nargs="*", default=[], help="pytest --junitxml files to count")
    ap.add_argument("--only", nargs="*", default=["lam", "windows", "dataset", "cam", "ig", "kde"])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, to check the script on a CPU")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    record = environment(device)
    record["quick"] = args.quick
    record.update(junit_counts(args.tests_junit))
    workdir = Path(tempfile.mkdtemp(prefix="lamfast-gpu-"))
    side = start_scipy_kde(args.quick, workdir) if "kde" in args.only else None
    benches = {"lam": lambda: bench_lam(device, args.quick),
               "windows": lambda: bench_windows(device, args.quick), "dataset": lambda: bench_dataset(device, args.quick, workdir),
               "cam": lambda: bench_cam(device, args.quick), "ig": lambda: bench_ig(device, args.quick),
               "kde": lambda: bench_kde(device, args.quick, side)}
    for name in args.only:
        try:
            record.update(benches[name]())
        except Exception as exc:  # noqa: BLE001 - one broken figure must not lose the others
            import traceback

            traceback.print_exc()
            record[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
        if device.type == "cuda":
            torch.cuda.empty_cache()
        Path(args.out).write_text(json.dumps(record, indent=2, default=str) + "\n")  # partial results survive a kill
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
