"""Shared fixtures: the device x dtype matrix and the official LAM reference case."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import lamfast

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("LAMFAST_REFERENCE", REPO / "tests" / "data" / "lam_case1.npz"))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# The suite checks the algorithms, so CUDA float32 runs in true float32: with
# TF32 (PyTorch's default for cuDNN convolutions) a conv rounds its inputs to
# 10 mantissa bits and no float32 tolerance below would mean anything. The
# library never touches these flags; test_cuda.py measures LAM GPU-vs-CPU
# parity at PyTorch's defaults (the `tf32_default` fixture there).
TF32_DEFAULTS = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
EXT_DISABLED_BY_ENV = os.environ.get("LAMFAST_DISABLE_EXT", "0").strip().lower() not in ("", "0", "false", "no")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run the tests marked slow (Ray, SIGKILL, inductor); CI does")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: runs with --runslow (CI runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


# float64 runs everywhere; half precision only where a GPU makes it the point.
DTYPES = [torch.float32, torch.float64]


@pytest.fixture(params=DTYPES, ids=lambda d: str(d).replace("torch.", ""))
def dtype(request) -> torch.dtype:
    """The compute dtype, as kornia's conftest does: models and inputs are cast to it."""
    return request.param


# One table per dtype (kornia-style): what "the same numbers" means for each
# kind of comparison, as the largest absolute difference allowed (relative to
# max(1, peak of the expected) for the kinds in RELATIVE). float32 rows hold
# what float32 arithmetic in another order or formulation can differ by;
# float64 rows what is left of float64 rounding.
TOLERANCE = {
    torch.float32: {
        "official": 1e-6,       # maps and SR against the official code's float32 numbers
        "official_di": 1e-5,    # Gini / DI against the official float32 gini (DI in points)
        "official_path": 1e-5,  # the blur path and the KDE against OpenCV / scipy on float32 input
        "twin": 1e-6,           # a compiled kernel against its pure-torch twin
        "same_lam": 1e-6,       # one LAM computed in other chunks, batches or stores
        "crop": 1e-5,           # a receptive-field crop against the whole image (saliency, DI)
        "loop": 1e-5,           # a batched method against its one-by-one loop
        "accumulate": 2e-6,     # path_accumulate against its loop (half-precision gradients in a float32 sum)
        # "the same LAM" between two computations (cropped vs whole, batched vs looped):
        # attribution relative to its peak, saliency in [0, 1], DI in points
        "lam_attribution": 2e-5, "lam_saliency": 1e-5, "lam_di": 1e-5,
        # classifier maps against their oracles: max abs on [0,1] CAM maps (pytorch-grad-cam
        # computes in float32 numpy, so float64 cannot be tighter), max relative for captum
        "cam": 5e-6, "captum": 1e-5,
        "captum_hooks": 1e-4,   # captum's hook-based methods (guided backprop), relative
        "cam_smooth": 2e-3,     # aug/eigen smoothing against pytorch-grad-cam (its numpy SVD and resize)
        "projection": 1e-4,     # a first principal component against numpy's SVD, relative to its peak
        "completeness": 1e-3,   # IG's sum against F(x) - F(baseline) at 64 steps (the Riemann sum's error)
        "completeness_ratio": 1e-5,  # LAMResult.completeness against the ratio computed here (relative)
        # one computation against the official loop, relative to the expected map's peak
        "official_loop": 1e-6, "official_vs_compat": 1e-5, "zoo_loop": 5e-6,
        "official_vs_compat_di": 1e-4,
    },
    torch.float64: {
        "official": 1e-12,
        "official_di": 1e-10,
        "official_path": 1e-9,
        "twin": 1e-12,
        "same_lam": 1e-11,
        "crop": 1e-10,
        "loop": 1e-12,
        "scipy": 1e-9,          # against scipy's float64 (KDE, quadrature)
        "formula": 1e-12,       # a closed form (the official gini, Gauss-Legendre nodes)
        "accumulate": 1e-14,
        "lam_attribution": 1e-11, "lam_saliency": 1e-11, "lam_di": 1e-10,
        "completeness_ratio": 1e-10,
        "cam": 5e-6, "captum": 1e-9,
    },
    torch.float16: {"twin": 1e-3},
    torch.bfloat16: {"twin": 1e-2},
}
# On CUDA, cuDNN picks its convolution algorithm per shape, so a crop and the
# whole image sum in different orders: float32 differences measured on an
# H100 (TF32 off) reached 1.6e-5 in DI where the CPU stays below 1.5e-7.
TOLERANCE_CUDA = {torch.float32: {"lam_attribution": 1e-4, "lam_saliency": 5e-5, "lam_di": 5e-5}}
RELATIVE = {"twin", "accumulate", "captum_hooks", "completeness_ratio"}
# Relative to the expected's peak itself (maps whose peak is far below 1).
PEAK_RELATIVE = {"projection", "official_loop", "official_vs_compat", "zoo_loop"}

# Views of the table, by the names the LAM and classifier tests use.
LAM_TOLERANCE = {dt: {k: TOLERANCE[dt][f"lam_{k}"] for k in ("attribution", "saliency", "di")}
                 for dt in (torch.float32, torch.float64)}
LAM_TOLERANCE_CUDA = {dt: {k: {**TOLERANCE[dt], **TOLERANCE_CUDA.get(dt, {})}[f"lam_{k}"]
                           for k in ("attribution", "saliency", "di")} for dt in (torch.float32, torch.float64)}
ATTR_TOLERANCE = {dt: {k: TOLERANCE[dt][k] for k in ("cam", "captum")} for dt in (torch.float32, torch.float64)}


def lam_tolerance(dtype: torch.dtype, device) -> dict:
    """The LAM_TOLERANCE row for ``dtype`` on ``device``."""
    return (LAM_TOLERANCE_CUDA if torch.device(device).type == "cuda" else LAM_TOLERANCE)[dtype]


def attr_grad(y: torch.Tensor, h: int, w: int, size: int, reduce: str = "sum") -> torch.Tensor:
    """The official ``attr_grad`` objective on [1,C,sH,sW], written out: the window of ``G``, summed or averaged."""
    hg = (y[:, :, :-1, :] - y[:, :, 1:, :]) ** 2
    wg = (y[:, :, :, :-1] - y[:, :, :, 1:]) ** 2
    crop = torch.sqrt(hg[:, :, :, :-1] + wg[:, :, :-1, :])[:, :, h:h + size, w:w + size]
    return crop.sum() if reduce == "sum" else crop.mean()


def attr_id(y: torch.Tensor, h: int, w: int, size: int, reduce: str = "sum") -> torch.Tensor:
    """The official ``attr_id`` objective: the window of the output itself, summed or averaged."""
    crop = y[:, :, h:h + size, w:w + size]
    return crop.sum() if reduce == "sum" else crop.mean()


def lam_loop(forward, path: torch.Tensor, deriv: torch.Tensor, window: tuple[int, int, int],
             robust: bool = False, objective=attr_grad, reduce: str = "sum") -> torch.Tensor:
    """The official LAM loop, written out as the reference of the exactness tests: for each step j,
    ``forward(path[j][None])`` -> [1,C,sH,sW], the objective on the window (by default the official
    ``attr_grad``; in ``robust``, sqrt on the window only, which equals compat where nothing ties), its
    input gradient with NaN zeroed, times ``deriv[j]``; the mean over steps. path, deriv: [fold, *point]."""
    h, w, size = window
    total = torch.zeros_like(path[0])
    for j in range(path.shape[0]):
        x = path[j][None].clone().requires_grad_(True)
        y = forward(x)
        (grad,) = torch.autograd.grad(objective(y, h, w, size, reduce), x)
        total += torch.nan_to_num(grad[0], nan=0.0) * deriv[j]
    return total / path.shape[0]


def _dtype(value) -> torch.dtype:
    if isinstance(value, torch.Tensor):
        return value.dtype
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.zeros(0, dtype=value.dtype)).dtype
    raise TypeError("assert_close needs dtype= for a Python number: the precision it was computed in")


def assert_close(actual, expected, kind: str, *, dtype: torch.dtype | None = None) -> None:
    """``actual`` equals ``expected`` within ``TOLERANCE[dtype][kind]`` (dtype: ``actual``'s, unless given)."""
    dtype = dtype or _dtype(actual)
    row = TOLERANCE[dtype if dtype in TOLERANCE else torch.float32]
    if kind not in row:
        raise KeyError(f"no {kind!r} tolerance for {dtype}")
    a, b = (v.detach().double().cpu() if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v), dtype=torch.float64)
            for v in (actual, expected))
    assert a.shape == b.shape, f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    diff = float((a - b).abs().max()) if a.numel() else 0.0
    if kind in RELATIVE:
        diff /= max(1.0, float(b.abs().max()) if b.numel() else 1.0)
    elif kind in PEAK_RELATIVE:
        diff /= float(b.abs().max()) if b.numel() and float(b.abs().max()) > 0 else 1.0
    assert diff <= row[kind], f"{kind} ({dtype}): max difference {diff:.3g} > {row[kind]:.0e}"


@pytest.fixture(scope="session")
def reference() -> dict:
    """The official LAM case (tests/data/lam_case1.npz, see its README): a missing file fails, never skips."""
    if not REFERENCE.is_file():
        pytest.fail(f"reference case not found at {REFERENCE} (set LAMFAST_REFERENCE to its path)")
    with np.load(REFERENCE) as z:
        return {k: z[k] for k in z.files}


# Models and an input shared by the DI-map and explore tests (a module's own fixture of the same name wins).
@pytest.fixture(scope="module")
def tinysr():
    """The bundled x4 TinySR module."""
    from lamfast.models import bundled_model

    return bundled_model().model


@pytest.fixture(scope="module")
def lr32():
    """A 32x32 LR crop of the bundled astronaut (the bundled TinySR's input)."""
    from lamfast.models import data_path
    from lamfast.request import prepare_input

    sr_input = prepare_input(None, data_path("astronaut.png"), scale=4)
    return sr_input.tensor()[:, 8:40, 16:48].contiguous()


@pytest.fixture(scope="module")
def edsr():
    """A small random EDSR x4 (2 blocks of 8 features), seeded."""
    from lamfast.models import EDSR

    torch.manual_seed(0)
    return EDSR(n_resblocks=2, n_feats=8, scale=4, rgb_range=1.0).eval()


def compiled(name: str, device: str) -> bool:
    """True when ``lamfast::name`` runs a compiled kernel on ``device``."""
    from lamfast.ops._library import has_compiled_kernel

    return has_compiled_kernel(name, device)


def max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max(1, max |b|)."""
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).abs().max() / max(1.0, b.abs().max().item())).item()


__all__ = ["ATTR_TOLERANCE", "DEVICES", "DTYPES", "EXT_DISABLED_BY_ENV", "LAM_TOLERANCE", "TOLERANCE", "assert_close",
           "compiled", "max_rel_diff", "lamfast"]


def optional_module(module: str):
    """An optional package (spandrel, timm, grad-cam) through lamfast's own import, as users get it:
    with its torchvision compatibility step where torchvision cannot load (:mod:`lamfast.optional`)."""
    import warnings

    from lamfast.errors import LamfastNote
    from lamfast.optional import import_optional

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LamfastNote)
        return import_optional(module, "this test")


def reference_model(reference: dict):
    """The reference case's TinySR with its weights, built through lamfast's registry."""
    from lamfast.models import TinySR

    sd = {k: torch.from_numpy(reference[k]) for k in reference if k.startswith(("head.", "body.", "tail."))}
    model = TinySR.from_state_dict(sd)
    model.load_state_dict(sd, strict=True)
    return model.eval()


def reference_forward_diff(reference: dict) -> float:
    """max |plain forward - reference SR| of the reference model on this machine.

    0 where this CPU's convolution kernels round as the machine's that made
    the reference did (torch picks AVX-512 or AVX2 kernels at run time, and
    they sum in different orders). Elsewhere no bit-for-bit comparison with
    the reference can hold, whatever lamfast does; the tests that need one
    say so and check the tolerance instead.
    """
    with torch.no_grad():
        sr = reference_model(reference)(torch.from_numpy(reference["lr"])[None])[0]
    return (sr - torch.from_numpy(reference["sr"])).abs().max().item()


def skip_unless_reference_platform(reference: dict) -> None:
    diff = reference_forward_diff(reference)
    if diff != 0:
        pytest.skip(f"this CPU (torch capability {torch.backends.cpu.get_cpu_capability()}) rounds the reference "
                    f"model's plain forward {diff:.1e} away from the reference SR: bit-for-bit equality cannot hold")


class NearestSR(torch.nn.Module):
    """x4 SR by a conv then nearest upsampling: equal neighbours make the official sqrt(0) NaN."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return torch.nn.functional.interpolate(self.conv(x), scale_factor=4, mode="nearest")


def astronaut_crops(folder, n: int, size: int, step: tuple[int, int]) -> None:
    """Write ``n`` size×size crops of the bundled astronaut, offset by ``step`` (x, y) each."""
    from PIL import Image

    from lamfast.models import data_path

    folder.mkdir(parents=True, exist_ok=True)
    astro = Image.open(data_path("astronaut.png"))
    for i in range(n):
        x, y = i * step[0], i * step[1]
        astro.crop((x, y, x + size, y + size)).save(folder / f"img{i:02d}.png")


def astronaut_images(folder, boxes: dict) -> "Path":
    """Write crops of the bundled astronaut into ``folder``: ``{file name: (left, top, right, bottom) or None
    for the whole image}``; returns the folder."""
    from PIL import Image

    from lamfast.models import data_path

    folder.mkdir(parents=True, exist_ok=True)
    astro = Image.open(data_path("astronaut.png"))
    for name, box in boxes.items():
        (astro.crop(box) if box else astro).save(folder / name)
    return folder
