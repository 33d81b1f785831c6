"""Registry of model architectures that checkpoints can be loaded into."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence, Union

from torch import nn

from lamfast.errors import LamfastError, LamfastKeyError


class ArchitectureGuessError(LamfastError):
    """A checkpoint has an architecture's layout, but a setting cannot be read
    from it and will not be guessed (one line, saying what to give)."""


@dataclass(frozen=True)
class Architecture:
    """A registered architecture.

    ``build(state_dict, overrides)`` returns ``(module, notes)``: an
    un-loaded module whose hyperparameters fit the checkpoint (width, depth,
    scale read from tensor shapes), with ``overrides`` (keyword arguments
    the user gave) taking precedence, and one note per line saying what was
    read from the checkpoint and what was assumed.
    """

    name: str
    build: Callable[..., tuple[nn.Module, list[str]]]
    description: str = ""
    # detect(state_dict) -> bool: whether a checkpoint has this layout, decided from its keys
    # (and shapes) before anything is built. None: never detected, only named.
    detect: Callable[[Mapping], bool] | None = None


_REGISTRY: dict[str, Architecture] = {}

Detect = Union[Callable[[Mapping], bool], Sequence[str], None]


def _detector(detect: Detect, factory) -> Callable[[Mapping], bool] | None:
    if detect is None:
        detect = getattr(factory, "detect", None)
    if detect is None or callable(detect):
        return detect
    keys = tuple(detect)
    return lambda sd: all(k in sd for k in keys)


def register_model(name: str, description: str = "", *, detect: Detect = None):
    """Decorator: make an nn.Module class (or factory) loadable by name, and detectable.

    ``detect`` says whether a checkpoint has this architecture's layout,
    before anything is built: a function ``detect(state_dict) -> bool``, or
    the state-dict keys whose presence marks it (a ``detect`` classmethod of
    the class serves when none is given). Without one, the architecture is
    only loaded when named (``ARCH:PATH``).

    A class with an ``infer(state_dict, given)`` classmethod returning
    ``(kwargs, why)`` (``given``: the user's keyword arguments, which win) is
    sized from the checkpoint (``why`` maps a keyword to a note on a guess
    the weights cannot settle); otherwise it is called with the user's
    keyword arguments alone. Its ``scale``, ``in_channels`` and
    ``out_channels`` attributes, where it has them, describe it; otherwise
    one forward measures them.

    Example:
        >>> import torch, lamfast
        >>> @lamfast.register_model("doubler", detect=("double.weight",))
        ... class Doubler(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.double = torch.nn.Conv2d(3, 12, 3, padding=1)
        ...     def forward(self, x):
        ...         return torch.nn.functional.pixel_shuffle(self.double(x), 2)
        >>> "doubler" in lamfast.models.list_architectures()
        True
    """
    key = name.lower()

    def wrap(factory):
        infer = getattr(factory, "infer", None)

        def build(state_dict, overrides=None):
            overrides = dict(overrides or {})
            kwargs, why = (infer(state_dict, overrides) if infer is not None and state_dict is not None else ({}, {}))
            read = {k: v for k, v in kwargs.items() if k not in overrides}
            lines = []
            if read:
                lines.append(f"{key}: from the checkpoint " + ", ".join(f"{k}={v!r}" for k, v in read.items())
                             + " (each can be overridden with architecture keyword arguments)")
            lines += [f"{key}: {text}" for k, text in why.items() if k not in overrides]
            if overrides:
                lines.append(f"{key}: as given " + ", ".join(f"{k}={v!r}" for k, v in overrides.items()))
            try:
                model = factory(**{**kwargs, **overrides})
            except TypeError as exc:
                raise LamfastError(f"{key} does not take these arguments: {exc}") from None
            return model, lines

        doc = description or (factory.__doc__ or "").strip().splitlines()[0:1]
        _REGISTRY[key] = Architecture(key, build, doc if isinstance(doc, str) else "".join(doc),
                                      _detector(detect, factory))
        return factory

    return wrap


def get_architecture(name: str) -> Architecture:
    """The registered architecture of that name (any case); LamfastKeyError listing the names otherwise.

    Example:
        >>> from lamfast.models import get_architecture
        >>> get_architecture("EDSR").name
        'edsr'
    """
    key = name.lower()
    if key not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise LamfastKeyError(f"unknown architecture {name!r} (registered: {known})", param="arch")
    return _REGISTRY[key]


def list_architectures() -> list[str]:
    """The registered architectures' names, sorted.

    Example:
        >>> from lamfast.models import list_architectures
        >>> {"tinysr", "edsr", "carn", "san", "rnan"} <= set(list_architectures())
        True
    """
    return sorted(_REGISTRY)


def detected_architectures(state_dict: Mapping) -> list[str]:
    """The registered architectures whose ``detect`` accepts ``state_dict``.

    Example:
        >>> from lamfast.models import TinySR, detected_architectures
        >>> detected_architectures(TinySR().state_dict())
        ['tinysr']
    """
    return [name for name in list_architectures() if _REGISTRY[name].detect and _REGISTRY[name].detect(state_dict)]
