"""Test-only shim for importing packages that import torchvision (spandrel, timm, grad-cam).

Used by tests/ and benchmarks/; lamfast itself never does this.
"""
from __future__ import annotations

import torch


def import_with_torchvision_shim(module: str):
    """Import ``module`` (spandrel, timm, ...) even where torchvision's C ops are broken.

    PyPI's torchvision here is a CUDA build that cannot load against the CPU
    torch: ``import torchvision`` dies registering a fake kernel for
    ``torchvision::nms`` whose schema its missing C library should have
    defined. Only when that real import fails, this test-only shim defines
    the ``torchvision::nms`` / ``qnms`` schemas (no kernels: nothing here
    calls them) and imports again. lamfast itself never does this.
    """
    import importlib
    import sys

    try:
        return importlib.import_module(module)
    except (ImportError, RuntimeError) as exc:
        if "torchvision" not in str(exc):
            raise  # e.g. the package itself is missing: install the test extra
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.") or m == module
                 or m.startswith(module + ".")]:
        del sys.modules[name]
    global _TV_SHIM
    if _TV_SHIM is None:
        _TV_SHIM = torch.library.Library("torchvision", "DEF")
        _TV_SHIM.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TV_SHIM.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    return importlib.import_module(module)


_TV_SHIM = None
