"""Attention maps for ViT classifiers: CLS attention, rollout, gradient-weighted (Chefer).

All take a timm-style ViT (fused attention is fine) and images [B,3,H,W];
maps cover the patch grid, ``num_prefix_tokens`` (CLS, distillation,
registers) dropped.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from lamfast.attention.recorder import AttentionRecorder
from lamfast.modelstate import attribution_state
from lamfast.targets import target_indices

from lamfast.errors import LamfastError


def _prefix(model: nn.Module, num_extra_tokens: int | None) -> int:
    return num_extra_tokens if num_extra_tokens is not None else int(getattr(model, "num_prefix_tokens", 1))


def _grid(row: torch.Tensor, prefix: int) -> torch.Tensor:
    """[..., N] token scores -> [..., h, w] over the patch tokens."""
    patches = row[..., prefix:]
    side = math.isqrt(patches.shape[-1])
    if side * side != patches.shape[-1]:
        raise LamfastError(f"{patches.shape[-1]} patch tokens do not form a square grid (check {{param}})",
                           param="num_extra_tokens")
    return patches.reshape(*patches.shape[:-1], side, side)


def _fuse(attn: torch.Tensor, head_fusion: str) -> torch.Tensor:
    if head_fusion == "mean":
        return attn.mean(dim=1)
    if head_fusion == "max":
        return attn.amax(dim=1)
    if head_fusion == "min":
        return attn.amin(dim=1)
    raise LamfastError(f"head_fusion must be 'mean', 'max' or 'min', got {head_fusion!r}")


def record(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Every attention map of one forward: list of [B, heads, N, N].

    Example:
        >>> import torch
        >>> from lamfast.attention import record
        >>> from lamfast.optional import import_optional
        >>> timm = import_optional("timm", "this example")
        >>> vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, num_classes=3).eval()
        >>> [tuple(a.shape) for a in record(vit, torch.rand(2, 3, 32, 32))]  # per block: [B, heads, N, N], N = 1 + 4·4
        [(2, 3, 17, 17), (2, 3, 17, 17)]
    """
    with attribution_state(model), torch.no_grad(), AttentionRecorder(model) as rec:
        model(x)
    return rec.maps


def cls_attention(model: nn.Module, x: torch.Tensor, layer: int = -1, head_fusion: str | None = "mean",
                  num_extra_tokens: int | None = None) -> torch.Tensor:
    """Attention of the CLS token to the patches in one layer.

    Returns:
        [B, h, w] (heads fused) or [B, heads, h, w] (``head_fusion=None``).

    Example:
        >>> import torch
        >>> from lamfast.optional import import_optional
        >>> vit = import_optional("timm", "this example").create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, num_classes=3).eval()
        >>> from lamfast.attention import cls_attention
        >>> cls_attention(vit, torch.rand(1, 3, 32, 32), head_fusion=None).shape  # [B, heads, h, w] over the patches
        torch.Size([1, 3, 4, 4])
    """
    attn = record(model, x)[layer]
    cls = attn[:, :, 0, :]  # [B, heads, N]
    if head_fusion is not None:
        cls = _fuse(cls[:, :, None, :], head_fusion)[:, 0]
    return _grid(cls, _prefix(model, num_extra_tokens))


def rollout(model: nn.Module, x: torch.Tensor, head_fusion: str = "mean", discard_ratio: float = 0.9,
            num_extra_tokens: int | None = None) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020), per image: [B, h, w], max 1.

    Each layer: fuse heads, zero the lowest ``discard_ratio`` of the weights
    (never the CLS column), add the identity, renormalise rows, multiply.
    Unlike vit-explain this discards per image (not only for image 0) and
    normalises rows correctly.

    Example:
        >>> import torch
        >>> from lamfast.attention import rollout
        >>> from lamfast.optional import import_optional
        >>> m = rollout(import_optional("timm", "this example").create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, num_classes=3).eval(), torch.rand(2, 3, 32, 32), discard_ratio=0.5)
        >>> m.shape, m.flatten(1).amax(1).tolist()  # max 1 per image
        (torch.Size([2, 4, 4]), [1.0, 1.0])
    """
    if not 0 <= discard_ratio < 1:
        raise LamfastError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    maps = record(model, x)
    B, N = maps[0].shape[0], maps[0].shape[-1]
    eye = torch.eye(N, device=x.device, dtype=maps[0].dtype)
    result = eye.expand(B, N, N).clone()
    for attn in maps:
        fused = _fuse(attn, head_fusion)
        flat = fused.reshape(B, -1).clone()
        k = int(flat.shape[1] * discard_ratio)
        if k:
            low = flat.topk(k, dim=1, largest=False).indices
            keep_cls = (low % N) == 0  # column 0: attention to CLS stays
            flat.scatter_(1, low, torch.where(keep_cls, flat.gather(1, low), torch.zeros_like(low, dtype=flat.dtype)))
        a = (flat.reshape(B, N, N) + eye) / 2
        a = a / a.sum(dim=-1, keepdim=True)
        result = a @ result
    mask = _grid(result[:, 0, :], _prefix(model, num_extra_tokens))
    return mask / mask.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]


def gradient_weighted(model: nn.Module, x: torch.Tensor, target=None,
                      num_extra_tokens: int | None = None) -> torch.Tensor:
    """Chefer et al. (ICCV 2021) generic attention explainability: [B, h, w] in [0, 1].

    ``R = I``; for every block ``R += mean_heads(relu(∇A ⊙ A)) @ R``; the map
    is the CLS row of R over the patches, min-max scaled per image.

    Example:
        >>> import torch
        >>> from lamfast.optional import import_optional
        >>> from lamfast.attention import gradient_weighted
        >>> vit = import_optional("timm", "this example").create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, num_classes=3).eval()
        >>> m = gradient_weighted(vit, torch.rand(2, 3, 32, 32), target=[0, 2])  # a class per image
        >>> tuple(m.shape), float(m.min()), float(m.max())  # min-max scaled per image
        ((2, 4, 4), 0.0, 1.0)
    """
    with attribution_state(model), torch.enable_grad(), AttentionRecorder(model, grads=True) as rec:
        leaf = x.detach().requires_grad_(True)  # the graph must reach the attention weights
        logits = model(leaf)
        t = target_indices(target, x.shape[0], logits=logits.detach())  # None: each image's prediction
        logits.gather(1, t[:, None]).sum().backward(inputs=[leaf])
    maps, grads = rec.maps, rec.grads
    B, N = maps[0].shape[0], maps[0].shape[-1]
    R = torch.eye(N, device=x.device).expand(B, N, N).clone()
    for i, attn in enumerate(maps):
        g = grads.get(i, torch.zeros_like(attn))
        cam = (g * attn.detach()).clamp_min(0).mean(dim=1)
        R = R + cam @ R
    row = _grid(R[:, 0, :], _prefix(model, num_extra_tokens))
    flat = row.flatten(1)
    flat = (flat - flat.min(1, keepdim=True).values) / (flat.max(1, keepdim=True).values - flat.min(1, keepdim=True).values).clamp_min(1e-12)
    return flat.view_as(row)


def swin_window_attention(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Per-window attention of every Swin block: list of [B·windows, heads, ws², ws²].

    Example:
        >>> import torch
        >>> from lamfast.optional import import_optional
        >>> timm = import_optional("timm", "this example")
        >>> swin = timm.models.swin_transformer.SwinTransformer(img_size=32, patch_size=4, window_size=4, embed_dim=16,
        ...                                                    depths=(1,), num_heads=(2,), num_classes=3).eval()
        >>> x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> from lamfast.attention import swin_window_attention
        >>> [tuple(a.shape) for a in swin_window_attention(swin, x)]  # 8x8 tokens in 4 windows of 4x4, 2 heads
        [(4, 2, 16, 16)]
    """
    return record(model, x)
