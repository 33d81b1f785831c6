"""Registry of model architectures that checkpoints can be loaded into."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import nn


@dataclass(frozen=True)
class Architecture:
    """A registered architecture.

    ``build(state_dict)`` returns an un-loaded module whose hyperparameters
    fit the checkpoint (width, depth, scale read from tensor shapes) or, for
    an architecture without such inference, the default instance.
    """

    name: str
    build: Callable[[Mapping[str, torch.Tensor] | None], nn.Module]
    description: str = ""


_REGISTRY: dict[str, Architecture] = {}


def register_model(name: str, description: str = ""):
    """Decorator: make an nn.Module class (or factory) loadable by ``--arch name``.

    A class with a ``from_state_dict(state_dict)`` classmethod is sized from
    the checkpoint; otherwise it is called without arguments.

    Example::

        @lamfast.register_model("mynet")
        class MyNet(nn.Module): ...
    """
    key = name.lower()

    def wrap(factory):
        from_sd = getattr(factory, "from_state_dict", None)

        def build(state_dict):
            if from_sd is not None and state_dict is not None:
                return from_sd(state_dict)
            return factory()

        doc = description or (factory.__doc__ or "").strip().splitlines()[0:1]
        _REGISTRY[key] = Architecture(key, build, doc if isinstance(doc, str) else "".join(doc))
        return factory

    return wrap


def get_architecture(name: str) -> Architecture:
    key = name.lower()
    if key not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"unknown architecture {name!r} (registered: {known})")
    return _REGISTRY[key]


def list_architectures() -> list[str]:
    return sorted(_REGISTRY)
