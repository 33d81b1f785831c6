"""Guided Backpropagation (Springenberg et al., 2015): ReLU gradients clamped at zero.

Works for models whose ReLUs are ``nn.ReLU`` modules (functional ReLUs are
not seen); the hooks are removed after each call.
"""
from __future__ import annotations

import torch
from torch import nn

from lamfast.attr.base import AttrError, Attribution, TargetSpec, input_gradients, target_indices


class GuidedBackprop(Attribution):
    """Guided Backpropagation (Springenberg et al., 2015): ReLU gradients clamped at zero.

    Example:
        >>> import torch
        >>> from lamfast.attr import GuidedBackprop
        >>> from lamfast.models.classifier import load_classifier
        >>> guided = GuidedBackprop(load_classifier("bundled").model)
        >>> guided.attribute(torch.rand(4, 3, 64, 64), target=[0, 1, 2, 3]).shape  # [B,C,H,W] like the input
        torch.Size([4, 3, 64, 64])
    """
    def attribute(self, inputs: torch.Tensor, target: TargetSpec = None) -> torch.Tensor:
        self._check(inputs)
        relus = [m for m in self.model.modules() if isinstance(m, nn.ReLU)]
        if not relus:
            raise AttrError("GuidedBackprop needs nn.ReLU modules in the model")

        def clamp(module, grad_input, grad_output):
            return tuple(None if g is None else g.clamp_min(0) for g in grad_input)

        handles = [m.register_full_backward_hook(clamp) for m in relus]
        saved = [m.inplace for m in relus]
        for m in relus:
            m.inplace = False  # backward hooks cannot see through in-place ops
        try:
            return input_gradients(self.model, inputs, target_indices(target, inputs.shape[0], inputs.device))
        finally:
            for h in handles:
                h.remove()
            for m, flag in zip(relus, saved):
                m.inplace = flag
