"""Layer-CAM (Jiang et al., 2021): activations weighted by the positive gradients, per position."""
import torch

from lamfast.cam.base import BaseCAM, projection_2d


class LayerCAM(BaseCAM):
    """Layer-CAM (Jiang et al., 2021): activations weighted by the positive gradients, per position.

    Example:
        >>> import torch
        >>> from lamfast.models.classifier import load_classifier
        >>> model = load_classifier("bundled").model  # the shapes CNN: [B,3,64,64] -> [B,4]
        >>> images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> from lamfast.cam import LayerCAM
        >>> maps = LayerCAM(model, [model.features[-1]])(images, targets=[3, 1])  # [B,H,W] in [0,1]
        >>> maps.shape, float(maps.min()) >= 0.0, float(maps.max()) <= 1.0
        (torch.Size([2, 64, 64]), True, True)
    """
    def cam_image(self, activations: torch.Tensor, grads: torch.Tensor, eigen_smooth: bool, **context) -> torch.Tensor:
        weighted = grads.clamp_min(0) * activations
        return projection_2d(weighted) if eigen_smooth else weighted.sum(dim=1)
