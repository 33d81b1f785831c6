"""Every op passes torch.library.opcheck and runs under torch.compile and TorchScript."""
from __future__ import annotations

import pytest
import torch

import lamfast


def _samples(device):
    gen = torch.Generator().manual_seed(0)

    def rand(*shape, **kw):
        return torch.rand(*shape, generator=gen, **kw).to(device)

    return {
        "blur_path": [
            (rand(3, 9, 7), 4, 1.2, 5),
            (rand(2, 3, 5, 6), 3, 0.7, 3),
            (rand(1, 1, 1), 2, 1.2, 9),
            (rand(3, 6, 6, dtype=torch.float64).requires_grad_(), 3, 1.0, 5),
        ],
        "path_accumulate": [
            (torch.zeros(3, 6, 5, device=device), rand(4, 3, 6, 5), rand(4, 3, 6, 5)),
            (torch.zeros(2, 3, 4, 4, device=device), rand(2, 5, 3, 4, 4), rand(2, 5, 3, 4, 4)),
        ],
        "kde_map": [
            (rand(12, 9),),
            (rand(3, 8, 8, dtype=torch.float64),),
            (torch.zeros(4, 4, device=device),),
        ],
        "lam_objective": [
            (rand(2, 3, 9, 8).requires_grad_(), [1, 2, 4, 1, 2, 4], False),
            (rand(2, 3, 7, 7, dtype=torch.float64).requires_grad_(), [0, 0, 3, 2, 1, 9, 1, 1, 2, 0, 0, 6], True),
            (rand(1, 1, 1, 5), [0, 0, 2], False),
        ],
        "lam_objective_backward": [
            (rand(1, 2), rand(2, 3, 9, 8), [1, 2, 4, 1, 2, 4], False),
            (rand(2, 2, dtype=torch.float64), rand(2, 3, 7, 7, dtype=torch.float64), [0, 0, 3, 2, 1, 9, 1, 1, 2, 0, 0, 6],
             True),
        ],
    }


@pytest.mark.parametrize("name", ["blur_path", "path_accumulate", "kde_map", "lam_objective", "lam_objective_backward"])
def test_opcheck(device, name):
    op = getattr(torch.ops.lamfast, name).default
    for args in _samples(device)[name]:
        torch.library.opcheck(op, args)


def _all_ops(image: torch.Tensor, saliency: torch.Tensor):
    path, deriv = torch.ops.lamfast.blur_path(image, 5, 1.2, 9)
    acc = torch.zeros_like(image)
    torch.ops.lamfast.path_accumulate(acc, path, deriv)
    return path, deriv, acc, torch.ops.lamfast.kde_map(saliency)


def _public_api(image: torch.Tensor, saliency: torch.Tensor):
    path, deriv = lamfast.blur_path(image, 5, 1.2, 9)
    acc = lamfast.path_accumulate(torch.zeros_like(image), path, deriv)
    return path, deriv, acc, lamfast.kde_map(saliency)


def _inputs(device):
    gen = torch.Generator().manual_seed(1)
    return torch.rand(3, 11, 10, generator=gen).to(device), torch.rand(11, 10, generator=gen).to(device)


@pytest.mark.parametrize("fn", [_all_ops, _public_api], ids=["torch.ops", "api"])
def test_torch_compile_fullgraph(device, fn):
    torch._dynamo.reset()
    image, saliency = _inputs(device)
    expected = fn(image, saliency)
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    for got, want in zip(compiled(image, saliency), expected):
        assert torch.allclose(got, want, atol=1e-6)


@pytest.mark.slow
def test_torch_compile_inductor(device):
    torch._dynamo.reset()
    image, saliency = _inputs(device)
    compiled = torch.compile(_all_ops, fullgraph=True)
    for got, want in zip(compiled(image, saliency), _all_ops(image, saliency)):
        assert torch.allclose(got, want, atol=1e-6)


def test_torch_compile_backward_through_blur_path(device):
    torch._dynamo.reset()
    x = torch.rand(3, 8, 8, device=device, requires_grad=True)

    def loss(t):
        path, deriv = torch.ops.lamfast.blur_path(t, 4, 1.0, 5)
        return (path * deriv).sum()

    (g_eager,) = torch.autograd.grad(loss(x), x)
    (g_comp,) = torch.autograd.grad(torch.compile(loss, fullgraph=True, backend="aot_eager")(x), x)
    assert torch.allclose(g_eager, g_comp, atol=1e-5)


@torch.jit.script
def _scripted(image: torch.Tensor, saliency: torch.Tensor):
    path, deriv = torch.ops.lamfast.blur_path(image, 5, 1.2, 9)
    acc = torch.zeros_like(image)
    torch.ops.lamfast.path_accumulate(acc, path, deriv)
    return path, deriv, acc, torch.ops.lamfast.kde_map(saliency)


def test_torchscript(device):
    image, saliency = _inputs(device)
    for got, want in zip(_scripted(image, saliency), _all_ops(image, saliency)):
        assert torch.equal(got, want)
    assert "lamfast::blur_path" in str(_scripted.graph)
