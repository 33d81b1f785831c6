"""Any gradient map × any CAM (Guided Grad-CAM when it is GuidedBackprop × GradCAM)."""
from __future__ import annotations

import torch

from lamfast.attr.base import Attribution, TargetSpec


class Combined:
    """``Combined(GuidedBackprop(model), GradCAM(model, layers)).attribute(x, target=...)``.

    Returns the attribution [B,C,H,W] multiplied by the CAM [B,1,H,W].

    Example:
        >>> import torch
        >>> from lamfast.cam import GradCAM
        >>> from lamfast.attr import Combined, GuidedBackprop
        >>> from lamfast.models.classifier import load_classifier
        >>> model = load_classifier("bundled").model
        >>> guided_gradcam = Combined(GuidedBackprop(model), GradCAM(model, [model.features[-1]]))
        >>> guided_gradcam.attribute(torch.rand(1, 3, 64, 64), target=3).shape
        torch.Size([1, 3, 64, 64])
    """

    def __init__(self, attribution: Attribution, cam):
        self.attribution = attribution
        self.cam = cam

    def attribute(self, inputs: torch.Tensor, target: TargetSpec = None, **kwargs) -> torch.Tensor:
        attr = self.attribution.attribute(inputs, target=target, **kwargs)
        maps = self.cam(inputs, target)  # one target contract (lamfast.targets): no translation
        return attr * maps[:, None].to(attr.dtype)
