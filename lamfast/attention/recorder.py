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
    """timm-style attention modules (``fused_attn`` + ``attn_drop``), in forward order of definition.

    Example:
        >>> from lamfast.optional import import_optional
        >>> from lamfast.attention import attention_modules
        >>> vit = import_optional("timm", "this example").create_model("vit_tiny_patch16_224", depth=3)
        >>> len(attention_modules(vit))  # one per block
        3
    """
    return [m for m in model.modules() if hasattr(m, "fused_attn") and isinstance(getattr(m, "attn_drop", None), nn.Module)]


class AttentionRecorder:
    """``with AttentionRecorder(model, grads=True) as rec: model(x)`` → ``rec.maps``, ``rec.grads``.

    ``maps[i]`` is [B, heads, N, N] for the i-th attention module that ran.

    Example:
        >>> import torch
        >>> from lamfast.optional import import_optional
        >>> vit = import_optional("timm", "this example").create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, num_classes=3).eval()
        >>> from lamfast.attention import AttentionRecorder
        >>> with AttentionRecorder(vit, grads=True) as rec:  # 2 blocks, 3 heads, 1 + 4·4 tokens
        ...     vit(torch.rand(1, 3, 32, 32))[0, 1].backward()
        >>> [tuple(a.shape) for a in rec.maps], sorted(rec.grads), tuple(rec.grads[0].shape)
        ([(1, 3, 17, 17), (1, 3, 17, 17)], [0, 1], (1, 3, 17, 17))
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
