"""Grad-CAM (Selvaraju et al., 2017): channel weights = spatial mean of the gradients."""
import torch

from lamfast.cam.base import BaseCAM


class GradCAM(BaseCAM):
    def cam_weights(self, activations: torch.Tensor, grads: torch.Tensor, **context) -> torch.Tensor:
        return grads.mean(dim=(2, 3))
