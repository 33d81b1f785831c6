"""The shared machinery of every CAM method (one subclass per method file).

A method overrides one hook: :meth:`BaseCAM.cam_weights` (channel weights,
Grad-CAM style) or :meth:`BaseCAM.cam_image` (the whole per-layer map).
Definitions and normalisation follow pytorch-grad-cam (ReLU, per-image
min-max, bilinear resize to the input, layers averaged) so maps match the
ones users know; the work stays in torch on the input's device, and
gradients go only down to the target layers (parameters frozen, no weight
gradients).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lamfast.modelstate import attribution_state
from lamfast.targets import TargetSpec, resolve_targets

from lamfast.errors import LamfastError



class CAMError(LamfastError):
    """Bad CAM input (one-line message)."""


def minmax_per_image(cam: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's ``scale_cam_image`` without resize: [B,h,w] -> [B,h,w] in [0,1]."""
    flat = cam.flatten(1)
    low, high = torch.aminmax(flat, dim=1, keepdim=True)  # one pass; max(x - min) == max - min exactly
    return ((flat - low) / (1e-7 + (high - low))).view_as(cam)


def projection_2d(activations: torch.Tensor) -> torch.Tensor:
    """First principal component of each image's activations: [B,C,h,w] -> [B,h,w].

    The same projection as pytorch-grad-cam's ``get_2d_projection`` (the
    centred [h*w, C] matrix times its first right singular vector), but
    batched in torch on the device and from the smaller Gram matrix in
    float64: an SVD of [8, 49, 512] costs about 9 % of a resnet18
    forward pass, ``eigh`` of [8, 49, 49] next to nothing.

    A singular vector's sign is arbitrary, and LAPACK builds disagree on it
    (pytorch-grad-cam's maps flip between machines). Here the sign is fixed:
    the component points the way the channel sum of ``activations`` does,
    so object regions, where activations are high, come out positive.
    """
    a = torch.nan_to_num(activations.double(), nan=0.0)
    B, C = a.shape[:2]
    m = a.reshape(B, C, -1).transpose(1, 2)  # [B, hw, C]
    m = m - m.mean(dim=1, keepdim=True)
    if m.shape[1] <= m.shape[2]:
        # m m^T = U S^2 U^T, and m v0 = s0 u0
        values, vectors = torch.linalg.eigh(m @ m.transpose(1, 2))
        projection = vectors[:, :, -1] * values[:, -1:].clamp_min(0).sqrt()
    else:
        _, vectors = torch.linalg.eigh(m.transpose(1, 2) @ m)  # m^T m = V S^2 V^T
        projection = (m @ vectors[:, :, -1:]).squeeze(-1)
    direction = (projection * a.sum(dim=1).flatten(1)).sum(dim=1, keepdim=True)
    projection = torch.where(direction < 0, -projection, projection)
    return projection.reshape(B, *a.shape[2:]).to(activations.dtype if activations.is_floating_point() else torch.float32)


class BaseCAM:
    """Class activation maps from hooks on ``target_layers``.

    The hooks are on the target layers only while a call runs (they record
    that call's forward and are removed before it returns), so an object kept
    around, with or without ``with``, holds no activations and leaves the
    model as it was. The context manager and :meth:`release` are kept for
    pytorch-grad-cam's usage.

    Args:
        model: a classifier [B,3,H,W] -> [B,classes].
        target_layers: modules whose outputs ([B,C,h,w], or tokens with
            ``reshape_transform``) the map is made from.
        reshape_transform: maps a layer output to [B,C,h,w] (see
            :mod:`lamfast.cam.reshape`).

    Example:
        >>> import torch
        >>> from lamfast.models.classifier import load_classifier
        >>> model = load_classifier("bundled").model  # the shapes CNN: [B,3,64,64] -> [B,4]
        >>> images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> from lamfast.cam import GradCAM  # a BaseCAM
        >>> maps = GradCAM(model, [model.features[-1]])(images, targets=[3, 1])  # [B,H,W] in [0,1]
        >>> maps.shape, float(maps.min()) >= 0.0, float(maps.max()) <= 1.0
        (torch.Size([2, 64, 64]), True, True)
    """

    uses_gradients = True

    def __init__(self, model: nn.Module, target_layers: Sequence[nn.Module], reshape_transform=None):
        if not target_layers:
            raise CAMError("target_layers is empty: pass at least one module of the model")
        self.model = model
        self.target_layers = list(target_layers)
        self.reshape_transform = reshape_transform
        self._activations: list[torch.Tensor] = []  # filled during one forward, emptied right after
        self._layers: list[nn.Module] = []
        self._handles: list = []  # only while a call runs

    # -- the hooks a method overrides -------------------------------------------------------------

    def cam_weights(self, activations: torch.Tensor, grads: torch.Tensor | None, *, inputs: torch.Tensor,
                    layer: nn.Module, targets: list, logits: torch.Tensor) -> torch.Tensor:
        """Channel weights [B,C] (Grad-CAM style methods override this).

        Everything a method may need comes in, as pytorch-grad-cam's
        ``get_cam_weights`` passes it; nothing is read from the object:

        Args:
            activations: [B,C,h,w] the layer's output (after reshape_transform), float32.
            grads: like activations, d score / d activations; None for gradient-free methods.
            inputs: [B,3,H,W] the batch the model ran on.
            layer: the target layer these activations come from.
            targets: one score function per image, logits row [classes] -> scalar.
            logits: [B, classes] the model's output on ``inputs`` (detached).
        """
        raise NotImplementedError

    def cam_image(self, activations: torch.Tensor, grads: torch.Tensor | None, eigen_smooth: bool,
                  **context) -> torch.Tensor:
        """The per-layer map [B,h,w] before ReLU; default: weighted channel sum. ``context``: see :meth:`cam_weights`."""
        weighted = self.cam_weights(activations, grads, **context)[:, :, None, None] * activations
        return projection_2d(weighted) if eigen_smooth else weighted.sum(dim=1)

    # -- machinery ---------------------------------------------------------------------------------

    def _capture(self, module, inputs, output):
        if not isinstance(output, torch.Tensor):
            raise CAMError(f"target layer {type(module).__name__} returns {type(output).__name__}, not a tensor")
        if not (torch.is_grad_enabled() and self.uses_gradients):
            self._activations.append(output)
            self._layers.append(module)
            return output
        # The first target layer to run becomes a leaf, so the backward stops
        # there; deeper target layers stay in the graph above it. The model
        # goes on with a copy, so an in-place op after the layer (ReLU(inplace))
        # cannot touch what the map is made of.
        stored = output if output.requires_grad else output.detach().requires_grad_(True)
        self._activations.append(stored)
        self._layers.append(module)
        return stored.clone()

    def _reshape(self, t: torch.Tensor) -> torch.Tensor:
        t = self.reshape_transform(t) if self.reshape_transform is not None else t
        if t.dim() != 4:
            raise CAMError(f"target layer output must be [B,C,h,w] (use reshape_transform), got {tuple(t.shape)}")
        return t

    def forward(self, input_tensor: torch.Tensor, targets=None, eigen_smooth: bool = False) -> torch.Tensor:
        if not isinstance(input_tensor, torch.Tensor) or input_tensor.dim() != 4:
            raise CAMError(f"input_tensor must be [B,C,H,W], got {getattr(input_tensor, 'shape', type(input_tensor))}")
        self._activations, self._layers = [], []
        with attribution_state(self.model), torch.set_grad_enabled(self.uses_gradients):
            self._handles = [layer.register_forward_hook(self._capture) for layer in self.target_layers]
            try:
                logits = self.model(input_tensor)
            finally:
                # Recording ends with this forward: later forwards (the method's own re-runs, the
                # user's) are not captured, and the call's tensors are not kept on the object.
                acts, layers = self._activations, self._layers
                self.release()
                self._activations, self._layers = [], []
            if logits.dim() != 2:
                raise CAMError(f"model must return logits [B,classes], got {tuple(logits.shape)}")
            score_fns = resolve_targets(targets, logits)
            grads: list[torch.Tensor | None] = [None] * len(acts)
            if self.uses_gradients:
                score = torch.stack([fn(logits[b]) for b, fn in enumerate(score_fns)]).sum()
                grads = list(torch.autograd.grad(score, acts, allow_unused=True))
                grads = [torch.zeros_like(a) if g is None else g for a, g in zip(acts, grads)]
        if len(acts) != len(self.target_layers):  # (checked before methods re-run the model)
            raise CAMError(f"{len(acts)} of {len(self.target_layers)} target layers ran in the forward pass")
        size = input_tensor.shape[-2:]
        per_layer = []
        with torch.no_grad():
            for a, g, layer in zip(acts, grads, layers):
                a = self._reshape(a.detach()).float()
                g = self._reshape(g).float() if g is not None else None
                cam = self.cam_image(a, g, eigen_smooth, inputs=input_tensor, layer=layer, targets=score_fns,
                                     logits=logits.detach()).clamp_min(0)
                cam = minmax_per_image(cam)
                per_layer.append(F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False))
            if len(per_layer) == 1:  # already >= 0: bilinear weights are convex, so the ReLU and mean are no-ops
                return minmax_per_image(per_layer[0][:, 0])
            return minmax_per_image(torch.cat(per_layer, dim=1).clamp_min(0).mean(dim=1))

    def __call__(self, input_tensor: torch.Tensor, targets: TargetSpec = None, aug_smooth: bool = False,
                 eigen_smooth: bool = False) -> torch.Tensor:
        """Maps [B,H,W] in [0,1] on the input's device.

        Args:
            input_tensor: [B,3,H,W].
            targets: see :mod:`lamfast.targets`: None (argmax per image), a class
                index, or class indices / callables on one image's logits, one per
                image or one for the whole batch.
            aug_smooth: average over horizontal flips × brightness 0.9, 1, 1.1
                (pytorch-grad-cam's test-time augmentation, 6 passes).
            eigen_smooth: first principal component instead of the channel sum.
        """
        if not aug_smooth:
            return self.forward(input_tensor, targets, eigen_smooth)
        maps = []
        for flip in (False, True):
            for factor in (0.9, 1.0, 1.1):
                x = input_tensor.flip(-1) if flip else input_tensor
                m = self.forward(x * factor, targets, eigen_smooth)
                maps.append(m.flip(-1) if flip else m)
        return torch.stack(maps).mean(dim=0)

    def release(self) -> None:
        """Remove the hooks from the model (they are only there while a call runs)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._activations = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.release()

