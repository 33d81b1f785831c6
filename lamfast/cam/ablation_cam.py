"""Ablation-CAM (Desai & Ramaswamy, 2020): a channel's weight is the relative drop of the
target score when that channel of the target layer is ablated. No gradients. Several
target layers are ablated one after the other, each map averaged as in the other methods.

The layer's cached output is replayed with one channel ablated per batch row,
so only the layers above the target run again. Ablation sets the channel to 0
when the layer's minimum is 0 (ReLU outputs), else to ``min - 1e7`` (one value
for every row; pytorch-grad-cam lowers it again for each row of a batch).
"""
from __future__ import annotations

import torch

from lamfast.cam.base import BaseCAM, CAMError


class AblationCAM(BaseCAM):
    uses_gradients = False
    batch_size = 32

    def cam_weights(self, activations: torch.Tensor, grads, *, inputs: torch.Tensor, layer: torch.nn.Module,
                    targets: list, logits: torch.Tensor, **context) -> torch.Tensor:
        if self.reshape_transform is not None:
            raise CAMError("AblationCAM replays the layer's raw output: reshape_transform is not supported")
        # Each target layer comes here with its own output; layers are ablated one at a time.
        x, score_fns = inputs, targets
        cached = activations.to(next((p.dtype for p in self.model.parameters()), activations.dtype))
        B, C = cached.shape[:2]
        replay: dict = {}

        def hook(module, inputs, output):
            return replay["batch"]

        handle = layer.register_forward_hook(hook)
        weights = torch.empty(B, C, device=cached.device)
        try:
            with torch.no_grad():
                for b, fn in enumerate(score_fns):
                    act = cached[b]
                    low = act.min()
                    value = torch.zeros((), dtype=act.dtype, device=act.device) if low == 0 else low - 1e7
                    original = fn(logits[b])
                    drops = []
                    for c0 in range(0, C, self.batch_size):
                        k = min(self.batch_size, C - c0)
                        batch = act[None].repeat(k, *([1] * act.dim())).clone()
                        batch[torch.arange(k), torch.arange(c0, c0 + k)] = value
                        replay["batch"] = batch
                        out = self.model(x[b][None].expand(k, *x.shape[1:]))
                        drops.append(torch.stack([fn(o) for o in out]))
                    weights[b] = (original - torch.cat(drops)) / original
        finally:
            handle.remove()
        return weights.to(activations.device)
