"""What the gradient attribution methods share: targets, gradients, the captum-style API."""
from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from lamfast.modelstate import attribution_state

TargetSpec = Union[None, int, Sequence[int], torch.Tensor]


class AttrError(ValueError):
    """Bad attribution input (one-line message)."""


def target_indices(target: TargetSpec, batch: int, device: torch.device) -> torch.Tensor | None:
    """captum's ``target``: None (scalar outputs), an int for all, or one index per example: [B] long."""
    if target is None:
        return None
    if isinstance(target, bool):
        raise AttrError(f"target must be an int, a sequence of ints or a tensor, got {target!r}")
    if isinstance(target, int):
        return torch.full((batch,), target, dtype=torch.long, device=device)
    t = torch.as_tensor(list(target) if not isinstance(target, torch.Tensor) else target, device=device).long()
    if t.dim() == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise AttrError(f"target has {t.numel()} entries for a batch of {batch}")
    return t


def scores(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """The model's output selected by ``target`` for each row of ``x``: [N]."""
    out = model(x)
    if target is None:
        if out.dim() > 1 and out.shape[1:].numel() != 1:
            raise AttrError(f"target is required for a model with outputs of shape {tuple(out.shape)}")
        return out.reshape(out.shape[0])
    classes = out.shape[-1]
    if bool(((target < 0) | (target >= classes)).any()):
        raise AttrError(f"target out of range for a model with {classes} outputs")
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
