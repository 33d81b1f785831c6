"""Optional dependencies (spandrel, timm, OpenCV, Ray, pyarrow, matplotlib, safetensors,
pytorch-grad-cam), imported only when used.

:func:`import_optional` is the one place lamfast imports them, and the one
message that says how to install one. It knows one
breakage that is common on CPU-only machines: the package index serves a
CUDA build of torchvision that cannot load against a CPU build of torch.
Its compiled ops library fails to load, so ``import torchvision`` then dies
registering a fake kernel for ``torchvision::nms``, an operator whose schema
that library should have defined, and spandrel and timm, which import
torchvision, fail with it.

Only in that case, and once per process, lamfast defines the two schemas
torchvision's Python side registers against (``torchvision::nms`` and
``torchvision::qnms``, without kernels) and imports again; a
:class:`~lamfast.errors.LamfastNote` says so. Nothing lamfast does calls
those operators; calling them still fails, with "no kernel registered".
Every other import failure is reported with its real cause.
"""
from __future__ import annotations

import importlib
import sys
import warnings
from types import ModuleType

from lamfast.errors import LamfastError, LamfastNote, first_line

# The pip extra that installs each package (``pip install "lamfast[...]"``).
EXTRAS = {"spandrel": "models", "timm": "models", "safetensors": "models", "cv2": "official", "ray": "ray",
          "pyarrow": "parquet", "matplotlib": "paper", "pytorch_grad_cam": "test"}
PIP_NAMES = {"pytorch_grad_cam": "grad-cam", "cv2": "opencv-python-headless", "ray": "ray[data]"}

# The schemas torchvision's _meta_registrations registers fake kernels for
# before anything else can fail (copied from torchvision's csrc/ops/nms.cpp).
_TORCHVISION_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_compat_library = None  # the torch.library.Library holding them, once defined


class MissingDependency(LamfastError, ImportError):
    """An optional package is not installed, or cannot be imported here (one-line message with the cause)."""


def is_torchvision_ops_mismatch(exc: BaseException) -> bool:
    """Whether ``exc`` is torchvision failing because its compiled ops did not load against this torch."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and "torchvision::" in text and "does not exist" in text


def torchvision_compat_applied() -> bool:
    """Whether :func:`import_optional` defined torchvision's schemas in this process."""
    return _compat_library is not None


def _forget(module: str) -> None:
    # A failed import leaves half-initialised modules behind; the retry must start clean.
    root = module.split(".")[0]
    for name in [m for m in sys.modules if m.split(".")[0] in (root, "torchvision")]:
        del sys.modules[name]


def _apply_torchvision_compat() -> None:
    global _compat_library
    import torch

    if _compat_library is not None:
        return
    library = torch.library.Library("torchvision", "DEF")
    for schema in _TORCHVISION_SCHEMAS:
        library.define(schema)
    _compat_library = library
    version = _torchvision_version()
    warnings.warn(
        f"torchvision{version} could not load its compiled ops against torch {torch.__version__} (a CUDA build "
        "of torchvision beside a CPU torch?); lamfast defined the torchvision::nms and qnms schemas, without "
        "kernels, so that packages importing torchvision load. torchvision's own detection ops stay unusable; "
        "a torchvision built for this torch removes the need",
        LamfastNote, stacklevel=3)


def _torchvision_version() -> str:
    try:
        from importlib.metadata import version

        return " " + version("torchvision")
    except Exception:  # noqa: BLE001 - only for the message
        return ""


def install_command(pip_name: str, extra: str | None = None) -> str:
    """How to install an optional package without pip replacing the installed torch: the package with
    torch pinned to this one (a plain ``pip install`` may swap a CPU torch for a multi-GB CUDA build), or
    the checkout's setup script for an extra.

    Example:
        >>> import torch
        >>> from lamfast.optional import install_command
        >>> install_command("scipy") == f'pip install scipy "torch=={torch.__version__}"'
        True
        >>> install_command("ray[data]", "ray").split("; ")[1]
        'or bash scripts/setup.sh --extras ray in the lamfast checkout'
    """
    import torch

    name = f'"{pip_name}"' if "[" in pip_name else pip_name  # a shell would expand the brackets
    pinned = f'pip install {name} "torch=={torch.__version__}"'
    return pinned + (f"; or bash scripts/setup.sh --extras {extra} in the lamfast checkout" if extra and extra != "test"
                     else "")


def import_optional(module: str, purpose: str, param: str | None = None) -> ModuleType:
    """Import an optional package, or raise :class:`MissingDependency` naming the cause.

    Args:
        module: the module to import, e.g. ``"spandrel"``, ``"timm"``, ``"cv2"`` or ``"ray.data"``.
        purpose: what needs it, for the message, e.g. ``"automatic architecture detection"``.
        param: the argument that asked for it (the error's ``param``).
    Returns:
        The module.
    Raises:
        MissingDependency: the package is not installed (with the pip command), or importing it
            failed (with the failure's first line; for a torchvision that cannot load even with the
            compatibility step, with that cause).
    """
    root = module.split(".")[0]
    pip_name = PIP_NAMES.get(root, root)
    extra = EXTRAS.get(root)
    install = install_command(pip_name, extra)
    try:
        importlib.import_module(root)  # first, so a package that is gone is not hidden by a cached submodule
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == root:  # the package, or the part an extra installs
            raise MissingDependency(f"{purpose} needs the {pip_name} package, which is not installed ({install})",
                                    param=param) from None
        failure: BaseException = exc
    except Exception as exc:  # noqa: BLE001 - whatever the package's own imports raise
        failure = exc
    if is_torchvision_ops_mismatch(failure) and not torchvision_compat_applied():
        _forget(module)
        _apply_torchvision_compat()
        try:
            return importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001
            failure = exc
    if is_torchvision_ops_mismatch(failure) or "torchvision" in str(failure):
        raise MissingDependency(
            f"{purpose} needs {pip_name}, which cannot be imported because torchvision{_torchvision_version()} "
            f"does not load against this torch ({first_line(failure)}); install the torchvision built for "
            "your torch", param=param) from None
    raise MissingDependency(f"{purpose} needs {pip_name}, whose import failed "
                            f"({type(failure).__name__}: {first_line(failure)})", param=param) from None


__all__ = ["MissingDependency", "import_optional", "is_torchvision_ops_mismatch", "torchvision_compat_applied"]
