"""Grad-CAM++ (Chattopadhyay et al., 2018), with pytorch-grad-cam's closed-form alphas."""
import torch

from lamfast.cam.base import BaseCAM


class GradCAMPlusPlus(BaseCAM):
    """Grad-CAM++ (Chattopadhyay et al., 2018), with pytorch-grad-cam's closed-form alphas.

    Example:
        >>> import torch
        >>> from lamfast.models.classifier import load_classifier
        >>> model = load_classifier("bundled").model  # the shapes CNN: [B,3,64,64] -> [B,4]
        >>> images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> from lamfast.cam import GradCAMPlusPlus
        >>> maps = GradCAMPlusPlus(model, [model.features[-1]])(images, targets=[3, 1])  # [B,H,W] in [0,1]
        >>> maps.shape, float(maps.min()) >= 0.0, float(maps.max()) <= 1.0
        (torch.Size([2, 64, 64]), True, True)
    """
    def cam_weights(self, activations: torch.Tensor, grads: torch.Tensor, **context) -> torch.Tensor:
        g2 = grads * grads
        g3 = g2 * grads
        sum_act = activations.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + sum_act * g3 + 1e-6)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        return (grads.clamp_min(0) * alpha).sum(dim=(2, 3))
