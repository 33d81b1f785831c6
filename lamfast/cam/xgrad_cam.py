"""XGrad-CAM (Fu et al., 2020): gradients weighted by the normalised activations."""
import torch

from lamfast.cam.base import BaseCAM


class XGradCAM(BaseCAM):
    def cam_weights(self, activations: torch.Tensor, grads: torch.Tensor, **context) -> torch.Tensor:
        sum_act = activations.sum(dim=(2, 3), keepdim=True)
        return (grads * activations / (sum_act + 1e-7)).sum(dim=(2, 3))
