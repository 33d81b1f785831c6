"""Saliency (vanilla gradient) and Input × Gradient."""
from __future__ import annotations

import torch

from lamfast.attr.base import Attribution, TargetSpec, input_gradients, target_indices


class Saliency(Attribution):
    """|d score / d input| (captum's ``Saliency``, ``abs=True`` by default).

    Example:
        >>> import torch
        >>> from lamfast.attr import Saliency
        >>> from lamfast.models.classifier import load_classifier
        >>> model = load_classifier("bundled").model  # the shapes CNN: [B,3,64,64] -> [B,4 classes]
        >>> a = Saliency(model).attribute(torch.rand(2, 3, 64, 64), target=[3, 1])  # a class per image
        >>> tuple(a.shape), bool((a >= 0).all())  # |gradient| unless abs=False
        ((2, 3, 64, 64), True)
    """

    def attribute(self, inputs: torch.Tensor, target: TargetSpec = None, abs: bool = True) -> torch.Tensor:
        self._check(inputs)
        g = input_gradients(self.model, inputs, target_indices(target, inputs.shape[0], inputs.device))
        return g.abs() if abs else g


class InputXGradient(Attribution):
    """input ⊙ d score / d input.

    Example:
        >>> import torch
        >>> from lamfast.models.classifier import load_classifier
        >>> from lamfast.attr import InputXGradient
        >>> x = torch.rand(1, 3, 64, 64)
        >>> x[..., :32] = 0  # a black left half
        >>> a = InputXGradient(load_classifier("bundled").model).attribute(x, target=3)
        >>> float(a[..., :32].abs().sum())  # input × gradient: nothing where the input is zero
        0.0
    """

    def attribute(self, inputs: torch.Tensor, target: TargetSpec = None) -> torch.Tensor:
        self._check(inputs)
        return inputs * input_gradients(self.model, inputs, target_indices(target, inputs.shape[0], inputs.device))
