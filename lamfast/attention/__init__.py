"""Attention maps for vision transformers (timm, fused attention included).

:func:`cls_attention`, :func:`rollout`, :func:`gradient_weighted` (Chefer
et al.), :func:`swin_window_attention`; :class:`AttentionRecorder` for raw maps.
SR transformers (SwinIR, HAT): :func:`sr_attention` (window and channel
attention at one location, :mod:`lamfast.attention.sr`).
"""
from lamfast.attention.recorder import AttentionRecorder, attention_modules
from lamfast.attention.sr import (SRAttention, SRAttentionError, WindowLayer, attention_grid, attention_overlays,
                                 sr_attention)
from lamfast.attention.vit import cls_attention, gradient_weighted, record, rollout, swin_window_attention

__all__ = ["AttentionRecorder", "SRAttention", "SRAttentionError", "attention_grid", "attention_modules",
           "attention_overlays", "cls_attention", "gradient_weighted", "record", "rollout", "sr_attention",
           "swin_window_attention", "WindowLayer"]
