"""Architectures named by the user: ``path/to/file.py:ClassName`` or ``package.module:ClassName``.

Importing the named file runs its code: that is the user's explicit choice
(it is how LAM users extend LAM with their own model class). The class is
built with the given keyword arguments and the checkpoint must then fit it
exactly.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from torch import nn

from lamfast.errors import LamfastError, first_line
from lamfast.optional import MissingDependency, import_optional, is_torchvision_ops_mismatch


class ArchSpecError(LamfastError):
    """An architecture spec or its keyword arguments cannot be used (one-line message)."""


def is_arch_spec(text: str) -> bool:
    """Whether ``text`` names a class (``FILE.py:Class`` or ``module:Class``) rather than a registered name."""
    target, sep, cls = text.rpartition(":")
    return bool(sep and target and cls.isidentifier())


def load_class(spec: str) -> type:
    """The class named by ``FILE.py:Class`` or ``module:Class``."""
    target, _, name = spec.rpartition(":")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target).expanduser()
        if not path.is_file():
            raise ArchSpecError(f"architecture file not found: {target}")
        # A unique module name per file, so two files with one name do not collide.
        module_name = "lamfast_user_arch_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ArchSpecError(f"cannot import {target} as Python")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        sys.path.insert(0, str(path.resolve().parent))  # so the file can import its neighbours
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the user's file failed: say how, in one line
            sys.modules.pop(module_name, None)
            raise ArchSpecError(f"importing {target} failed: {type(exc).__name__}: {first_line(exc)}") from None
        finally:
            sys.path.remove(str(path.resolve().parent))
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:  # noqa: BLE001
            if not is_torchvision_ops_mismatch(exc):
                raise ArchSpecError(f"cannot import module {target!r}: {type(exc).__name__}: {first_line(exc)}") from None
            # spandrel's and timm's classes import torchvision; a CPU torch beside the index's CUDA
            # torchvision breaks that import, and import_optional knows the one safe way past it.
            try:
                module = import_optional(target, f"architecture {spec!r}")
            except MissingDependency as missing:
                raise ArchSpecError(str(missing)) from None
    cls = getattr(module, name, None)
    if cls is None:
        raise ArchSpecError(f"{target} has no {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)) and not callable(cls):
        raise ArchSpecError(f"{spec} is not an nn.Module class or factory")
    return cls


def build_custom(spec: str, kwargs: dict[str, Any]) -> tuple[nn.Module, str, list[str]]:
    """(model, architecture label, notes) for a user-named class."""
    cls = load_class(spec)
    try:
        model = cls(**kwargs)
    except TypeError as exc:
        raise ArchSpecError(f"{spec}({_kwargs(kwargs)}) failed: {first_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise ArchSpecError(f"{spec} returned {type(model).__name__}, not an nn.Module")
    return model, spec, [f"built {spec}({_kwargs(kwargs)}) from the user's code"]


def _kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())

