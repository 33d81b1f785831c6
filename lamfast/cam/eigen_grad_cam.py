"""Eigen-Grad-CAM: first principal component of gradients × activations."""
import torch

from lamfast.cam.base import BaseCAM, projection_2d


class EigenGradCAM(BaseCAM):
    """Eigen-Grad-CAM: first principal component of gradients × activations.

    Example:
        >>> import torch
        >>> from lamfast.models.classifier import load_classifier
        >>> model = load_classifier("bundled").model  # the shapes CNN: [B,3,64,64] -> [B,4]
        >>> images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> from lamfast.cam import EigenGradCAM
        >>> maps = EigenGradCAM(model, [model.features[-1]])(images, targets=[3, 1])  # [B,H,W] in [0,1]
        >>> maps.shape, float(maps.min()) >= 0.0, float(maps.max()) <= 1.0
        (torch.Size([2, 64, 64]), True, True)
    """
    def cam_image(self, activations: torch.Tensor, grads: torch.Tensor, eigen_smooth: bool, **context) -> torch.Tensor:
        return projection_2d(grads * activations)
