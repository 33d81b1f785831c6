"""Registry of model architectures that checkpoints can be loaded into."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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


_REGISTRY: dict[str, Architecture] = {}


def register_model(name: str, description: str = ""):
    """Decorator: make an nn.Module class (or factory) loadable by ``--arch name``.

    A class with an ``infer(state_dict, given)`` classmethod returning ``(kwargs,
    why)`` (``given``: the user's keyword arguments, which win) is sized from the checkpoint (``why`` maps a keyword to a note on
    a guess the weights cannot settle); otherwise it is called with the
    user's keyword arguments alone.

    Example::

        @lamfast.register_model("mynet")
        class MyNet(nn.Module): ...
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
        _REGISTRY[key] = Architecture(key, build, doc if isinstance(doc, str) else "".join(doc))
        return factory

    return wrap


def get_architecture(name: str) -> Architecture:
    key = name.lower()
    if key not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise LamfastKeyError(f"unknown architecture {name!r} (registered: {known})", param="arch")
    return _REGISTRY[key]


def list_architectures() -> list[str]:
    return sorted(_REGISTRY)
