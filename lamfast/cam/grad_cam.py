"""Grad-CAM (Selvaraju et al., 2017): channel weights = spatial mean of the gradients."""
import torch

from lamfast.cam.base import BaseCAM


class GradCAM(BaseCAM):
    """Grad-CAM (Selvaraju et al., 2017): channel weights = spatial mean of the gradients.

    Example:
        >>> import torch
        >>> from lamfast.models.classifier import load_classifier
        >>> model = load_classifier("bundled").model  # the shapes CNN: [B,3,64,64] -> [B,4]
        >>> images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> from lamfast.cam import GradCAM
        >>> maps = GradCAM(model, [model.features[-1]])(images, targets=[3, 1])  # [B,H,W] in [0,1]
        >>> maps.shape, float(maps.min()) >= 0.0, float(maps.max()) <= 1.0
        (torch.Size([2, 64, 64]), True, True)
    """
    def cam_weights(self, activations: torch.Tensor, grads: torch.Tensor, **context) -> torch.Tensor:
        return grads.mean(dim=(2, 3))
