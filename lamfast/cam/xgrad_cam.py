"""XGrad-CAM (Fu et al., 2020): gradients weighted by the normalised activations."""
import torch

from lamfast.cam.base import BaseCAM


class XGradCAM(BaseCAM):
    """XGrad-CAM (Fu et al., 2020): gradients weighted by the normalised activations.

    Example:
        >>> import torch
        >>> from lamfast.models.classifier import load_classifier
        >>> model = load_classifier("bundled").model  # the shapes CNN: [B,3,64,64] -> [B,4]
        >>> images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> from lamfast.cam import XGradCAM
        >>> maps = XGradCAM(model, [model.features[-1]])(images, targets=[3, 1])  # [B,H,W] in [0,1]
        >>> maps.shape, float(maps.min()) >= 0.0, float(maps.max()) <= 1.0
        (torch.Size([2, 64, 64]), True, True)
    """
    def cam_weights(self, activations: torch.Tensor, grads: torch.Tensor, **context) -> torch.Tensor:
        sum_act = activations.sum(dim=(2, 3), keepdim=True)
        return (grads * activations / (sum_act + 1e-7)).sum(dim=(2, 3))
