"""A model named by one string, parsed once: :class:`ModelSpec` (``[NAME=]SPEC``)."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from lamfast.bundled import BUNDLED, bundled_file, is_bundled
from lamfast.errors import LamfastError

# A model's label in ``NAME=SPEC``: no path separator, ':' or '=', so a path or ARCH:PATH is never read as one.
LABEL = re.compile(r"[^/\\:=\s][^/\\:=]*")


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

    Example:
        >>> from lamfast.models import ModelSpec
        >>> ModelSpec.parse("bundled").bundled, ModelSpec.parse("my.pth").path
        (True, 'my.pth')
    """

    text: str
    arch: str | None = None
    path: str | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)
    # ``NAME=SPEC``: what stores, reports and exports call the model (None: :func:`model_labels` chooses)
    label: str | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, text: "str | ModelSpec") -> "ModelSpec":
        """Read one model string; the checkpoint is what follows the last ``:`` (an existing file wins).

        Example:
            >>> from lamfast.models import ModelSpec
            >>> s = ModelSpec.parse("base=edsr:weights/EDSRx4.pt")
            >>> s.label, s.arch, s.path
            ('base', 'edsr', 'weights/EDSRx4.pt')
        """
        from lamfast.models.custom import is_arch_spec

        if isinstance(text, ModelSpec):
            return text
        text = str(text)
        if not text:
            raise LamfastError("a model spec is empty: give 'bundled', PATH or ARCH:PATH", param="model")
        label, eq, rest = text.partition("=")
        if eq and not Path(text).exists() and LABEL.fullmatch(label):
            if not rest:
                raise LamfastError(f"model {label!r} has no spec after '=': give NAME=bundled, NAME=PATH or "
                                   f"NAME=ARCH:PATH", param="model")
            return replace(cls.parse(rest), label=label)
        if is_bundled(text):
            return cls(text)
        arch, sep, path = text.rpartition(":")
        if not sep or not arch or not path or Path(text).exists():
            return cls(text, None, text)
        if is_arch_spec(arch) or ("/" not in arch and "\\" not in arch):
            # The split is a guess (a path may hold ':'): say it, as every guess is said.
            return cls(text, arch, path, (f"read {text!r} as architecture {arch!r} with checkpoint {path!r}",))
        return cls(text, None, text)

    def with_arch(self, arch: str | None) -> "ModelSpec":
        """This spec with its architecture named apart (``--arch``, ``load_model(path, arch=...)``).

        Raises:
            LamfastError: an architecture for the bundled model other than its own, or two different ones.
        """
        if arch is None or arch == self.arch:
            return self
        if self.bundled:
            if arch != "tinysr":
                raise LamfastError(f"architecture {arch!r} needs a checkpoint path (the bundled model is a tinysr)",
                                   param="model")
            return self
        if self.arch is not None:
            raise LamfastError(f"{self.text!r} names architecture {self.arch!r}, and {arch!r} was given too",
                               param="model")
        return replace(self, text=f"{arch}:{self.path}", arch=arch, notes=())

    @property
    def bundled(self) -> bool:
        return self.path is None

    @property
    def name(self) -> str:
        """A short display name: the label when given, else ``bundled`` or the checkpoint's file name,
        with ``ARCH:`` when named."""
        if self.label:
            return self.label
        if self.bundled:
            return BUNDLED
        return f"{self.arch}:{Path(self.path).name}" if self.arch else Path(self.path).name

    @cached_property
    def sha(self) -> str | None:
        """Content hash: the checkpoint's bytes (the bundled weights for ``bundled``), with the
        architecture file's bytes for ``FILE.py:Class``; None when a file cannot be read.

        The formula is the one stores have been keyed by since they held hashes, so they resume.
        """
        if self.bundled:
            return file_sha(bundled_file("sr_model"))
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
        return ModelSpec(f"{arch}:{path}" if arch else path, arch, path, self.notes, self.label)



def model_labels(specs: list[ModelSpec]) -> list[str]:
    """What each model is called in stores, reports and exports: its ``NAME=`` label, else
    ``bundled`` or the checkpoint's file stem; a repeated name gets ``-2``, ``-3``, ... in order.

    Raises:
        LamfastError: two models given the same label.

    Example:
        >>> from lamfast.models import ModelSpec, model_labels
        >>> model_labels([ModelSpec.parse(s) for s in ["a/x.pt", "b/x.pt", "ref=bundled"]])
        ['x', 'x-2', 'ref']
    """
    given = [s.label for s in specs if s.label]
    if len(set(given)) != len(given):
        raise LamfastError(f"two models are both named {next(n for n in given if given.count(n) > 1)!r}",
                           param="model")
    out: list[str] = []
    for s in specs:
        base = s.label or (BUNDLED if s.bundled else Path(s.path).stem)
        name, k = base, 1
        while name in out or (not s.label and name in given):
            k += 1
            name = f"{base}-{k}"
        out.append(name)
    return out
