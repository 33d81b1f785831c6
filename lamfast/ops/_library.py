"""Registration plumbing shared by the op modules.

With the extension loaded, csrc/lamfast.cpp has already declared the
schemas below; without it, they are declared here so that
``torch.ops.lamfast.*`` exists either way (TorchScript and torch.compile
see the same ops). Each op's pure-torch twin is registered as the
``CompositeExplicitAutograd`` kernel: it serves every device that has no
compiled kernel of its own.
"""
from __future__ import annotations

from typing import Callable

import torch

from lamfast._ext import EXT_LOADED

NAMESPACE = "lamfast"

# Must stay identical to the m.def lines of csrc/lamfast.cpp (a test checks).
SCHEMAS: dict[str, str] = {
    "blur_path": "blur_path(Tensor image, int fold=50, float sigma=1.2, int l=9) -> (Tensor, Tensor)",
    "path_accumulate": "path_accumulate(Tensor(a!) acc, Tensor grads, Tensor deriv) -> ()",
    "kde_map": "kde_map(Tensor saliency) -> Tensor",
    "lam_objective": "lam_objective(Tensor y, int[] windows, bool robust=False) -> (Tensor, Tensor)",
    "lam_objective_backward": "lam_objective_backward(Tensor grad, Tensor y, int[] windows, bool robust=False) -> Tensor",
}

_LIBS: list[torch.library.Library] = []

if not EXT_LOADED:
    _def_lib = torch.library.Library(NAMESPACE, "DEF")
    for _schema in SCHEMAS.values():
        _def_lib.define(_schema)
    _LIBS.append(_def_lib)

_impl_lib = torch.library.Library(NAMESPACE, "IMPL")
_LIBS.append(_impl_lib)


def qualname(name: str) -> str:
    return f"{NAMESPACE}::{name}"


def register_twin(name: str, twin: Callable) -> None:
    """Make ``twin`` the kernel of every device without a compiled one."""
    _impl_lib.impl(name, twin, "CompositeExplicitAutograd")


def has_compiled_kernel(name: str, device_type: str) -> bool:
    """True when ``lamfast::name`` has a compiled kernel for ``device_type``."""
    if not EXT_LOADED:
        return False
    key = {"cpu": "CPU", "cuda": "CUDA"}.get(device_type)
    return key is not None and torch._C._dispatch_has_kernel_for_dispatch_key(qualname(name), key)
