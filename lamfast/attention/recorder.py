"""Seeing attention weights inside timm models that use fused attention.

timm's attention modules compute ``F.scaled_dot_product_attention`` when
``fused_attn`` is set, which hides the weights from hooks (and
``timm.utils.AttentionExtract`` needs ``TIMM_FUSED_ATTN=0``). The recorder
switches each module to its explicit softmax path for the duration of the
block — same weights, no environment flag — and records what enters
``attn_drop`` (the post-softmax weights), with their gradients on request.
"""
from __future__ import annotations

import torch
from torch import nn

from lamfast.errors import LamfastError


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """timm-style attention modules (``fused_attn`` + ``attn_drop``), in forward order of definition."""
    return [m for m in model.modules() if hasattr(m, "fused_attn") and isinstance(getattr(m, "attn_drop", None), nn.Module)]


class AttentionRecorder:
    """``with AttentionRecorder(model, grads=True) as rec: model(x)`` → ``rec.maps``, ``rec.grads``.

    ``maps[i]`` is [B, heads, N, N] for the i-th attention module that ran.
    """

    def __init__(self, model: nn.Module, grads: bool = False):
        self.modules = attention_modules(model)
        if not self.modules:
            raise LamfastError("no timm-style attention modules (with fused_attn and attn_drop) found in the model")
        self.want_grads = grads
        self.maps: list[torch.Tensor] = []
        self.grads: dict[int, torch.Tensor] = {}
        self._handles: list = []
        self._fused: list[bool] = []

    def _hook(self, module, inputs):
        attn = inputs[0]
        index = len(self.maps)
        self.maps.append(attn)
        if self.want_grads and attn.requires_grad:
            attn.register_hook(lambda g, i=index: self.grads.__setitem__(i, g))

    def __enter__(self) -> "AttentionRecorder":
        self._fused = [bool(m.fused_attn) for m in self.modules]
        for m in self.modules:
            m.fused_attn = False
            self._handles.append(m.attn_drop.register_forward_pre_hook(self._hook))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        for m, flag in zip(self.modules, self._fused):
            m.fused_attn = flag
