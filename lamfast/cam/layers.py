"""Finding target layers: by name, by default, and listing them (``--preview-model``)."""
from __future__ import annotations

from torch import nn

from lamfast.cam.base import CAMError


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """``"layer4"``, ``"blocks.-1.norm1"`` or ``"features[-1]"`` -> the module."""
    module = model
    for part in name.replace("[", ".").replace("]", "").split("."):
        if not part:
            continue
        try:
            if part.lstrip("-").isdigit() and isinstance(module, (nn.Sequential, nn.ModuleList)):
                module = module[int(part)]
            else:
                module = getattr(module, part)
        except (AttributeError, IndexError):
            raise CAMError(f"unknown layer {name!r} (lamfast.cam.layers.list_layers(model) lists them)") from None
        if not isinstance(module, nn.Module):
            raise CAMError(f"{name!r} is not a module of the model")
    return module


def default_target_layers(model: nn.Module, vit_like: bool = False) -> list[nn.Module]:
    """The norm layer of the last block for ViT-like models, else the last conv stage."""
    blocks = getattr(model, "blocks", None)
    if vit_like or (blocks is not None and len(blocks) and hasattr(blocks[-1], "norm1")):
        if blocks is None or not len(blocks) or not hasattr(blocks[-1], "norm1"):
            raise CAMError("a ViT-like model needs blocks[-1].norm1; pass the target layers explicitly")
        return [blocks[-1].norm1]
    stages = [m for _, m in model.named_children() if any(isinstance(c, nn.Conv2d) for c in m.modules())]
    if not stages:
        raise CAMError("no convolutional stage found; pass the target layers explicitly")
    return [stages[-1]]


def list_layers(model: nn.Module) -> list[str]:
    """One line per module: dotted name and type (what ``--target-layers`` accepts)."""
    return [f"{name or '(model)'}  {type(m).__name__}" for name, m in model.named_modules()]
