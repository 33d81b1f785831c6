"""What the gradient attribution methods share: targets, gradients, the captum-style API."""
from __future__ import annotations

import torch
from torch import nn

from lamfast.modelstate import attribution_state
from lamfast.targets import TargetError, TargetSpec, target_indices

from lamfast.errors import LamfastError

__all__ = ["AttrError", "Attribution", "TargetError", "TargetSpec", "input_gradients", "scores", "target_indices"]


class AttrError(LamfastError):
    """Bad attribution input (one-line message)."""


def scores(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """The model's output selected by ``target`` for each row of ``x``: [N]."""
    out = model(x)
    if target is None:
        if out.dim() > 1 and out.shape[1:].numel() != 1:
            raise TargetError(f"a target is required for a model with outputs of shape {tuple(out.shape)}")
        return out.reshape(out.shape[0])
    classes = out.shape[-1]
    if bool(((target < 0) | (target >= classes)).any()):  # indices given without the class count
        raise TargetError(f"a target class is out of range for a model with {classes} classes")
    return out.gather(1, target[:, None])[:, 0]


def input_gradients(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """d score / d input for each row, with the model frozen in eval mode: like x."""
    with attribution_state(model), torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(scores(model, leaf.clone(), target).sum(), leaf)
    return g


class Attribution:
    """Base: ``Method(model).attribute(inputs, target=...)`` as in captum."""

    def __init__(self, model: nn.Module):
        self.model = model

    def attribute(self, inputs: torch.Tensor, target: TargetSpec = None, **kwargs) -> torch.Tensor:
        raise NotImplementedError

    def _check(self, inputs: torch.Tensor) -> None:
        if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point() or inputs.dim() < 2:
            raise AttrError(f"inputs must be a float tensor [B, ...], got {getattr(inputs, 'shape', type(inputs))}")
