"""Saliency (vanilla gradient) and Input × Gradient."""
from __future__ import annotations

import torch

from lamfast.attr.base import Attribution, TargetSpec, input_gradients, target_indices


class Saliency(Attribution):
    """|d score / d input| (captum's ``Saliency``, ``abs=True`` by default)."""

    def attribute(self, inputs: torch.Tensor, target: TargetSpec = None, abs: bool = True) -> torch.Tensor:
        self._check(inputs)
        g = input_gradients(self.model, inputs, target_indices(target, inputs.shape[0], inputs.device))
        return g.abs() if abs else g


class InputXGradient(Attribution):
    """input ⊙ d score / d input."""

    def attribute(self, inputs: torch.Tensor, target: TargetSpec = None) -> torch.Tensor:
        self._check(inputs)
        return inputs * input_gradients(self.model, inputs, target_indices(target, inputs.shape[0], inputs.device))
