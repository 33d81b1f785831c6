"""Grad-CAM++ (Chattopadhyay et al., 2018), with pytorch-grad-cam's closed-form alphas."""
import torch

from lamfast.cam.base import BaseCAM


class GradCAMPlusPlus(BaseCAM):
    def cam_weights(self, activations: torch.Tensor, grads: torch.Tensor, **context) -> torch.Tensor:
        g2 = grads * grads
        g3 = g2 * grads
        sum_act = activations.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + sum_act * g3 + 1e-6)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        return (grads.clamp_min(0) * alpha).sum(dim=(2, 3))
