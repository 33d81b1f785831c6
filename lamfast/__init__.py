"""lamfast: fast, exact attribution for PyTorch image models.

Ops (C++ kernels with pure-torch twins), see :mod:`lamfast.ops`:
:func:`blur_path`, :func:`path_accumulate`, :func:`kde_map`.
"""
from lamfast._ext import ext_available, ext_status
from lamfast._version import __version__
from lamfast.ops import blur_path, kde_map, path_accumulate

__all__ = [
    "__version__",
    "blur_path",
    "ext_available",
    "ext_status",
    "kde_map",
    "path_accumulate",
]
