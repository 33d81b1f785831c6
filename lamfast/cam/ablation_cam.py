"""Ablation-CAM (Desai & Ramaswamy, 2020): a channel's weight is the relative drop of the
target score when that channel of the target layer is ablated. No gradients. Several
target layers are ablated one after the other, each map averaged as in the other methods.

The layer's output from the first forward is replayed with one channel ablated
per batch row. The model still runs from its input each time (a hook cannot
start a forward in the middle of a module), but the layers below the target
run on one row, not on the batch of ablations: the target layer's hook turns
that row into the k ablated rows, and only the layers above it run k times.
That is exact wherever the layers above treat rows independently; a model
whose upper layers tie rows to the input's batch size (a reshape by the
batch size taken at the top) fails that. So the first batch of every image
of a call is also run the plain way, the whole model on k copies of the
input, and compared; on a mismatch (or an error, or a wrong output shape)
the call falls back to the plain way. :attr:`AblationCAM.last_replay` says
which ran.

Ablation sets the channel to 0 when the layer's minimum is 0 (ReLU outputs),
else to ``min - 1e7`` (one value for every row; pytorch-grad-cam lowers it
again for each row of a batch).
"""
from __future__ import annotations

import torch

from lamfast.cam.base import BaseCAM, CAMError

# Agreement needed between the one-row and the plain replay (relative to the score's size).
REPLAY_RTOL = 1e-5


class AblationCAM(BaseCAM):
    """Ablation-CAM (Desai & Ramaswamy, 2020): a channel's weight is the relative drop of the

    Example:
        >>> import torch
        >>> from lamfast.models.classifier import load_classifier
        >>> model = load_classifier("bundled").model  # the shapes CNN: [B,3,64,64] -> [B,4]
        >>> images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> from lamfast.cam import AblationCAM
        >>> maps = AblationCAM(model, [model.features[-1]])(images, targets=[3, 1])  # [B,H,W] in [0,1]
        >>> maps.shape, float(maps.min()) >= 0.0, float(maps.max()) <= 1.0
        (torch.Size([2, 64, 64]), True, True)
    """
    uses_gradients = False
    batch_size = 32
    last_replay: str | None = None  # "one row below the layer" or "whole model per row", for the last call

    def cam_weights(self, activations: torch.Tensor, grads, *, inputs: torch.Tensor, layer: torch.nn.Module,
                    targets: list, logits: torch.Tensor, **context) -> torch.Tensor:
        if self.reshape_transform is not None:
            raise CAMError("AblationCAM replays the layer's raw output: reshape_transform is not supported")
        # Each target layer comes here with its own output; layers are ablated one at a time.
        cached = activations.to(next((p.dtype for p in self.model.parameters()), activations.dtype))
        B, C = cached.shape[:2]
        replay: dict = {}

        def hook(module, inputs, output):
            return replay["batch"]

        handle = layer.register_forward_hook(hook)
        weights = torch.empty(B, C, device=cached.device)
        one_row = False
        try:
            with torch.no_grad():
                for b, fn in enumerate(targets):
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
                        plain = inputs[b][None].expand(k, *inputs.shape[1:])
                        if b == 0 and c0 == 0:
                            scores = torch.stack([fn(o) for o in self.model(plain)])
                            one_row = self._one_row_agrees(plain[:1], k, fn, scores)
                        else:
                            scores = torch.stack([fn(o) for o in self.model(plain[:1] if one_row else plain)])
                        drops.append(scores)
                    weights[b] = (original - torch.cat(drops)) / original
                    self.last_replay = "one row below the layer" if one_row else "whole model per row"
        finally:
            handle.remove()
        return weights.to(activations.device)

    def _one_row_agrees(self, row: torch.Tensor, k: int, fn, want: torch.Tensor) -> bool:
        """Whether the one-row replay of the batch the hook holds gives the plain replay's scores ``want``."""
        try:
            out = self.model(row)
        except Exception:  # noqa: BLE001 - upper layers that need the input's batch size: use the plain way
            return False
        if not isinstance(out, torch.Tensor) or out.shape[0] != k:
            return False
        got = torch.stack([fn(o) for o in out])
        return bool(torch.allclose(got, want, rtol=REPLAY_RTOL, atol=REPLAY_RTOL * float(want.abs().max())))
