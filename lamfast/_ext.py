"""Finds out whether the compiled operator library ``lamfast._C`` is in use.

``LAMFAST_DISABLE_EXT=1`` skips it, so every op runs its pure-torch twin;
the twins also serve every device the extension has no kernel for.
"""
from __future__ import annotations

import importlib
import os

import torch  # noqa: F401  (libtorch must be loaded before lamfast._C)

DISABLE_ENV = "LAMFAST_DISABLE_EXT"


def _load() -> tuple[bool, str]:
    if os.environ.get(DISABLE_ENV, "0").strip().lower() not in ("", "0", "false", "no"):
        return False, f"disabled by {DISABLE_ENV}"
    try:
        importlib.import_module("lamfast._C")
    except ImportError as exc:
        return False, f"lamfast._C is not built or cannot load ({exc})"
    return True, "lamfast._C loaded"


EXT_LOADED, EXT_STATUS = _load()


def ext_available() -> bool:
    """True when the ops run the compiled C++ (and CUDA, if built) kernels.

    Example:
        >>> import lamfast
        >>> isinstance(lamfast.ext_available(), bool)
        True
    """
    return EXT_LOADED


def ext_status() -> str:
    """One line saying why the extension is or is not in use.

    Example:
        >>> import lamfast
        >>> lamfast.ext_status()  # doctest: +ELLIPSIS
        '...'
    """
    return EXT_STATUS
