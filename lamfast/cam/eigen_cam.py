"""Eigen-CAM (Muhammad & Yeasin, 2020): first principal component of the activations; no gradients."""
import torch

from lamfast.cam.base import BaseCAM, projection_2d


class EigenCAM(BaseCAM):
    uses_gradients = False

    def cam_image(self, activations: torch.Tensor, grads, eigen_smooth: bool, **context) -> torch.Tensor:
        return projection_2d(activations)
