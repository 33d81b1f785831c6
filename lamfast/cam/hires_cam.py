"""HiResCAM (Draelos & Carin, 2020): element-wise gradients × activations, summed over channels."""
import torch

from lamfast.cam.base import BaseCAM, projection_2d


class HiResCAM(BaseCAM):
    def cam_image(self, activations: torch.Tensor, grads: torch.Tensor, eigen_smooth: bool, **context) -> torch.Tensor:
        weighted = grads * activations
        return projection_2d(weighted) if eigen_smooth else weighted.sum(dim=1)
