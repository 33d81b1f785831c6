"""CUDA kernels against the CPU kernels and the twins (skipped without a GPU).

The device x dtype tests in the other files also run on CUDA when one is
present; these add the cross-device parity and the compiled-kernel check.
"""
from __future__ import annotations

import pytest
import torch

import lamfast
from lamfast.ops import blur_path_torch, kde_map_torch

from conftest import EXT_DISABLED_BY_ENV, compiled, max_rel_diff

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.skipif(EXT_DISABLED_BY_ENV, reason="extension disabled")
@pytest.mark.parametrize("name", ["blur_path", "path_accumulate", "kde_map"])
def test_cuda_kernels_are_compiled(name):
    assert compiled(name, "cuda"), f"lamfast::{name} has no CUDA kernel (built without CUDA?)"


@pytest.mark.parametrize("shape", [(3, 64, 64), (2, 3, 33, 47), (1, 1, 1)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_blur_path_cuda_matches_cpu(shape, dtype):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    gpu = lamfast.blur_path(x.cuda(), 12)
    cpu = lamfast.blur_path(x, 12)
    tol = {torch.float32: 1e-6, torch.float64: 1e-12, torch.float16: 2e-3, torch.bfloat16: 1e-2}[dtype]
    for a, b in zip(gpu, cpu):
        assert a.dtype == dtype and max_rel_diff(a.cpu(), b) <= tol * 12
    tp, _ = blur_path_torch(x.cuda().double(), 12)
    assert max_rel_diff(gpu[0].cpu(), tp.cpu()) <= tol * 12


@pytest.mark.parametrize("grad_dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_path_accumulate_cuda_matches_cpu(grad_dtype):
    gen = torch.Generator().manual_seed(1)
    acc = torch.randn(2, 3, 40, 30, generator=gen)
    grads = torch.randn(2, 7, 3, 40, 30, generator=gen).to(grad_dtype)
    deriv = torch.randn(2, 7, 3, 40, 30, generator=gen).to(grad_dtype)
    gpu = lamfast.path_accumulate(acc.cuda(), grads.cuda(), deriv.cuda())
    cpu = lamfast.path_accumulate(acc.clone(), grads, deriv)
    assert max_rel_diff(gpu.cpu(), cpu) <= 2e-6


@pytest.mark.parametrize("size", [(64, 64), (128, 96), (512, 512)])
def test_kde_map_cuda_matches_cpu_and_twin(size):
    sal = torch.rand(size, generator=torch.Generator().manual_seed(2)) ** 8
    gpu = lamfast.kde_map(sal.cuda())
    assert max_rel_diff(gpu.cpu(), lamfast.kde_map(sal)) <= 1e-6
    assert max_rel_diff(gpu.cpu(), kde_map_torch(sal.cuda()).cpu()) <= 1e-6


def test_lam_on_cuda_matches_cpu():
    from lamfast.models import bundled_model

    model = bundled_model().model
    x = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(3))
    cpu = lamfast.lam(model, x, 40, 40, 16, fold=10)
    gpu = lamfast.lam(model.cuda(), x.cuda(), 40, 40, 16, fold=10)
    assert gpu.attribution.is_cuda
    assert max_rel_diff(gpu.attribution.cpu(), cpu.attribution) <= 1e-4
    assert abs(gpu.di - cpu.di) <= 1e-3


@pytest.fixture
def tf32_default():
    """PyTorch's own TF32 settings (conftest turns TF32 off for the rest of the suite)."""
    from conftest import TF32_DEFAULTS

    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = TF32_DEFAULTS
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_lam_on_cuda_with_tf32_default_stays_close_to_cpu(tf32_default):
    """What users get on a GPU without touching any flag: TF32 convolutions.
    TF32 keeps 10 mantissa bits, so the bound is loose by design; the
    measured figures for EDSR-baseline are in benchmarks/results/gpu_*.json."""
    from lamfast.models import bundled_model

    model = bundled_model().model
    x = torch.rand(3, 48, 48, generator=torch.Generator().manual_seed(4))
    cpu = lamfast.lam(model, x, 60, 60, 16, fold=20)
    gpu = lamfast.lam(model.cuda(), x.cuda(), 60, 60, 16, fold=20)
    assert max_rel_diff(gpu.attribution.cpu(), cpu.attribution) <= 2e-2
    assert float((gpu.saliency.cpu() - cpu.saliency).abs().max()) <= 2e-2
    assert abs(gpu.di - cpu.di) <= 0.2


def test_hot_path_has_no_host_sync():
    """The LAM path loop runs with CUDA's sync debug mode set to error: any
    .item(), .cpu() or host-blocking copy inside integrate_path raises."""
    from lamfast.lam.objective import window_objectives
    from lamfast.models import bundled_model
    from lamfast.path import integrate_path

    model = bundled_model().model.cuda()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.rand(3, 32, 32, device="cuda")
    path, deriv = lamfast.blur_path(x, 10)
    windows = [(20, 20, 16), (60, 60, 16)]

    def objective(points, chunk):
        return window_objectives(model(points), windows, "compat")

    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        result = integrate_path(objective, path[None], deriv[None], batch_size=4, grad_batch=2)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert result.total.shape == (2, 1, 3, 32, 32) and result.nan_steps.is_cuda
