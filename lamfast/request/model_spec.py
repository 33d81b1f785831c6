"""A model named by one string, parsed once: :class:`ModelSpec`."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from lamfast.errors import LamfastError


def file_sha(path: str | Path | None) -> str | None:
    """sha256 (32 hex digits) of a file's bytes; None when it cannot be read."""
    if path is None:
        return None
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class ModelSpec:
    """A model as ``bundled``, ``PATH``, ``ARCH:PATH`` or ``FILE.py:Class:PATH``.

    ``arch`` is a registered architecture, ``FILE.py:Class`` or
    ``package.module:Class`` (None: detect from the checkpoint); ``path`` is
    the checkpoint (None for the bundled model). ``notes`` say how an
    ambiguous string was read. Two specs of the same bytes have the same
    :attr:`sha`, wherever the files lie.
    """

    text: str
    arch: str | None = None
    path: str | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def parse(cls, text: str) -> "ModelSpec":
        """Read one model string; the checkpoint is what follows the last ``:`` (an existing file wins)."""
        from lamfast.models.custom import is_arch_spec

        text = str(text)
        if not text:
            raise LamfastError("a model spec is empty: give 'bundled', PATH or ARCH:PATH", param="model")
        if text == "bundled" and not Path(text).exists():
            return cls(text)
        arch, sep, path = text.rpartition(":")
        if not sep or not arch or not path or Path(text).exists():
            return cls(text, None, text)
        if is_arch_spec(arch) or ("/" not in arch and "\\" not in arch):
            # The split is a guess (a path may hold ':'): say it, as every guess is said.
            return cls(text, arch, path, (f"read {text!r} as architecture {arch!r} with checkpoint {path!r}",))
        return cls(text, None, text)

    @classmethod
    def of(cls, path: str | None, arch: str | None = None) -> "ModelSpec":
        """The spec of a checkpoint and an architecture given apart (None, None: the bundled model)."""
        if path is None or str(path) == "bundled" and not Path(str(path)).exists():
            if arch not in (None, "tinysr"):
                raise LamfastError(f"architecture {arch!r} needs a checkpoint path (the bundled model is a tinysr)",
                                   param="model")
            return cls("bundled")
        return cls(f"{arch}:{path}" if arch else str(path), arch, str(path))

    @property
    def bundled(self) -> bool:
        return self.path is None

    @property
    def name(self) -> str:
        """A short display name: ``bundled``, the checkpoint's file name, with ``ARCH:`` when named."""
        if self.bundled:
            return "bundled"
        return f"{self.arch}:{Path(self.path).name}" if self.arch else Path(self.path).name

    @cached_property
    def sha(self) -> str | None:
        """Content hash: the checkpoint's bytes (the bundled weights for ``bundled``), with the
        architecture file's bytes for ``FILE.py:Class``; None when a file cannot be read.

        The formula is the one stores have been keyed by since they held hashes, so they resume.
        """
        from lamfast.models import BUNDLED_WEIGHTS, data_path

        if self.bundled:
            return file_sha(data_path(BUNDLED_WEIGHTS))
        parts = [file_sha(self.path)]
        if self.arch and ":" in self.arch:
            target = self.arch.rpartition(":")[0]
            if target.endswith(".py") or "/" in target:
                parts.append(file_sha(target))
        if any(p is None for p in parts):
            return None
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    def resolved(self) -> "ModelSpec":
        """The same spec with absolute paths (for processes that run elsewhere, e.g. Ray actors)."""
        if self.bundled:
            return self
        path = str(Path(self.path).resolve())
        arch = self.arch
        if arch and ":" in arch:
            target, _, cls_name = arch.rpartition(":")
            if target.endswith(".py") or "/" in target:
                arch = f"{Path(target).resolve()}:{cls_name}"
        return ModelSpec(f"{arch}:{path}" if arch else path, arch, path, self.notes)

    def load(self, *, device="cpu", unsafe_pickle: bool = False, rgb_range: float | None = None,
             arch_kwargs: dict | None = None):
        """:func:`lamfast.models.load_model` of this spec; the notes of the parse come first in its notes."""
        from lamfast.models import load_model

        loaded = load_model(self.path, arch=self.arch, unsafe_pickle=unsafe_pickle, rgb_range=rgb_range,
                            device=device, arch_kwargs=arch_kwargs)
        loaded.notes[:0] = list(self.notes)
        return loaded
