"""lamfast's operators, one module each; importing this registers them.

| op | module | compiled kernel |
| --- | --- | --- |
| ``blur_path`` | :mod:`lamfast.ops.blur_path` | ``csrc/cpu/blur_path_cpu.cpp`` |
| ``path_accumulate`` | :mod:`lamfast.ops.path_accumulate` | ``csrc/cpu/path_accumulate_cpu.cpp`` |
| ``kde_map`` | :mod:`lamfast.ops.kde_map` | ``csrc/cpu/kde_map_cpu.cpp`` |
| ``lam_objective``, ``lam_objective_backward`` | :mod:`lamfast.ops.lam_objective` | ``csrc/cpu/lam_objective_cpu.cpp`` (CPU only) |

Each module holds the public function, its pure-torch twin (``*_torch``),
the fake kernel and, where differentiable, the autograd formula. All are
also reachable as ``torch.ops.lamfast.<name>``.
"""
from lamfast.ops.blur_path import blur_path, blur_path_torch
from lamfast.ops.kde_map import kde_map, kde_map_torch
from lamfast.ops.lam_objective import lam_objective, lam_objective_torch
from lamfast.ops.path_accumulate import path_accumulate, path_accumulate_torch

OP_NAMES = ("blur_path", "path_accumulate", "kde_map", "lam_objective", "lam_objective_backward")

__all__ = [
    "OP_NAMES",
    "blur_path",
    "blur_path_torch",
    "kde_map",
    "kde_map_torch",
    "lam_objective",
    "lam_objective_torch",
    "path_accumulate",
    "path_accumulate_torch",
]
