"""Score-CAM (Wang et al., 2020): each channel, upsampled and min-max scaled, masks the
input; the softmax of the target scores over channels weights the channels. No gradients."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lamfast.cam.base import BaseCAM


class ScoreCAM(BaseCAM):
    """Score-CAM (Wang et al., 2020): each channel, upsampled and min-max scaled, masks the

    Example:
        >>> import torch
        >>> from lamfast.models.classifier import load_classifier
        >>> model = load_classifier("bundled").model  # the shapes CNN: [B,3,64,64] -> [B,4]
        >>> images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> from lamfast.cam import ScoreCAM
        >>> maps = ScoreCAM(model, [model.features[-1]])(images, targets=[3, 1])  # [B,H,W] in [0,1]
        >>> maps.shape, float(maps.min()) >= 0.0, float(maps.max()) <= 1.0
        (torch.Size([2, 64, 64]), True, True)
    """
    uses_gradients = False
    batch_size = 16

    def cam_weights(self, activations: torch.Tensor, grads, *, inputs: torch.Tensor, targets: list,
                    **context) -> torch.Tensor:
        x, score_fns = inputs, targets
        # pytorch-grad-cam upsamples with UpsamplingBilinear2d, i.e. align_corners=True
        up = F.interpolate(activations.to(x.device), size=x.shape[-2:], mode="bilinear", align_corners=True)
        flat = up.flatten(2)
        lo, hi = flat.min(dim=-1).values[..., None, None], flat.max(dim=-1).values[..., None, None]
        masks = (up - lo) / (hi - lo + 1e-8)  # [B, C, H, W]
        weights = []
        with torch.no_grad():
            for b, fn in enumerate(score_fns):
                masked = x[b][None] * masks[b][:, None]  # [C, 3, H, W]
                scores = torch.cat([torch.stack([fn(o) for o in self.model(masked[i : i + self.batch_size])])
                                    for i in range(0, masked.shape[0], self.batch_size)])
                weights.append(torch.softmax(scores.float(), dim=-1))
        return torch.stack(weights).to(activations.device)
