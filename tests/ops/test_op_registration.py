"""The ops as real torch ops, with or without the extension: registration, schemas in one place, the
dispatcher's one rule, opcheck, torch.compile and TorchScript."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import lamfast
from lamfast.ops import OP_NAMES
from lamfast.ops._library import SCHEMAS

from conftest import EXT_DISABLED_BY_ENV, REPO


def test_extension_state_matches_environment():
    # A failed build must not pass CI silently on the twins alone.
    assert lamfast.ext_available() is (not EXT_DISABLED_BY_ENV), lamfast.ext_status()


def test_extension_flag_printed_after_install():
    code = "import lamfast; print(lamfast.ext_available())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(not EXT_DISABLED_BY_ENV)


def test_disable_env_forces_twin():
    code = "import lamfast; print(lamfast.ext_available(), lamfast.ext_status())"
    env = {**__import__("os").environ, "LAMFAST_DISABLE_EXT": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.startswith("False disabled by LAMFAST_DISABLE_EXT")


@pytest.mark.parametrize("name", OP_NAMES)
def test_op_is_registered(name):
    op = getattr(torch.ops.lamfast, name).default
    assert str(op._schema) == "lamfast::" + SCHEMAS[name]


def test_the_schemas_live_in_one_place():
    """lamfast/ops/_library.py defines every schema; the C++ sources only register kernels."""
    sources = [p for p in (REPO / "csrc").rglob("*") if p.suffix in (".cpp", ".cu", ".h")]
    assert sources
    for path in sources:
        text = path.read_text()
        assert "m.def(" not in text and "TORCH_LIBRARY(" not in text, path


def test_one_rule_picks_kernel_or_twin():
    """No public op wrapper chooses between kernel and twin: each calls its torch.ops op, and the dispatcher
    decides (a compiled kernel for its device, the twin, registered as CompositeExplicitAutograd, elsewhere)."""
    import inspect

    from lamfast import ops

    for name in ("blur_path", "path_accumulate", "kde_map", "lam_objective"):
        source = inspect.getsource(getattr(ops, name))
        assert f"torch.ops.lamfast.{name}(" in source, name
        assert "_torch(" not in source and "has_compiled_kernel" not in source, name
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"lamfast::{name}", "CompositeExplicitAutograd")


@pytest.mark.skipif(not lamfast.ext_available(), reason="extension disabled: no compiled kernels to look up")
@pytest.mark.parametrize("name", OP_NAMES)
def test_compiled_cpu_kernel_present(name):
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"lamfast::{name}", "CPU")


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
