"""Ablation-CAM (Desai & Ramaswamy, 2020): a channel's weight is the relative drop of the
target score when that channel of the target layer is ablated. No gradients.

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

    def cam_weights(self, activations: torch.Tensor, grads) -> torch.Tensor:
        if len(self.target_layers) != 1:
            raise CAMError("AblationCAM takes one target layer at a time")
        if self.reshape_transform is not None:
            raise CAMError("AblationCAM replays the layer's raw output: reshape_transform is not supported")
        x, score_fns, layer = self._input, self._score_fns, self.target_layers[0]
        cached = self._raw_outputs[0]
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
                    original = fn(self._logits[b])
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
