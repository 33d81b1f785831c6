"""Eigen-Grad-CAM: first principal component of gradients × activations."""
import torch

from lamfast.cam.base import BaseCAM, projection_2d


class EigenGradCAM(BaseCAM):
    def cam_image(self, activations: torch.Tensor, grads: torch.Tensor, eigen_smooth: bool, **context) -> torch.Tensor:
        return projection_2d(grads * activations)
