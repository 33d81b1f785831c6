"""Registration plumbing shared by the op modules, and the one place lamfast's op schemas live.

The schemas are defined here, from Python, whether the extension is loaded
or not, so ``torch.ops.lamfast.*`` exists either way (TorchScript and
torch.compile see the same ops). The compiled library ``lamfast._C`` only
registers device kernels (``TORCH_LIBRARY_IMPL`` in ``csrc/cpu`` and
``csrc/cuda``); the dispatcher accepts a kernel before its schema.

One rule picks what runs, for every op: the dispatcher. A compiled kernel
serves its device; each op's pure-torch twin is registered as the
``CompositeExplicitAutograd`` kernel and serves every device (and dtype a
kernel refuses) without one.
"""
from __future__ import annotations

from typing import Callable

import torch

from lamfast._ext import EXT_LOADED

NAMESPACE = "lamfast"

SCHEMAS: dict[str, str] = {
    "blur_path": "blur_path(Tensor image, int fold=50, float sigma=1.2, int l=9) -> (Tensor, Tensor)",
    "path_accumulate": "path_accumulate(Tensor(a!) acc, Tensor grads, Tensor deriv) -> ()",
    "kde_map": "kde_map(Tensor saliency) -> Tensor",
    "lam_objective": "lam_objective(Tensor y, int[] windows, bool robust=False) -> (Tensor, Tensor)",
    "lam_objective_backward": "lam_objective_backward(Tensor grad, Tensor y, int[] windows, bool robust=False) -> Tensor",
}

_def_lib = torch.library.Library(NAMESPACE, "DEF")
for _schema in SCHEMAS.values():
    _def_lib.define(_schema)
_impl_lib = torch.library.Library(NAMESPACE, "IMPL")


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
