"""Layer-CAM (Jiang et al., 2021): activations weighted by the positive gradients, per position."""
import torch

from lamfast.cam.base import BaseCAM, projection_2d


class LayerCAM(BaseCAM):
    def cam_image(self, activations: torch.Tensor, grads: torch.Tensor, eigen_smooth: bool, **context) -> torch.Tensor:
        weighted = grads.clamp_min(0) * activations
        return projection_2d(weighted) if eigen_smooth else weighted.sum(dim=1)
