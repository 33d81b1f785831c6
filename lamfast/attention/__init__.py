"""Attention maps for vision transformers (timm, fused attention included).

:func:`cls_attention`, :func:`rollout`, :func:`gradient_weighted` (Chefer
et al.), :func:`swin_window_attention`; :class:`AttentionRecorder` for raw maps.
"""
from lamfast.attention.recorder import AttentionRecorder, attention_modules
from lamfast.attention.vit import cls_attention, gradient_weighted, record, rollout, swin_window_attention

__all__ = ["AttentionRecorder", "attention_modules", "cls_attention", "gradient_weighted", "record", "rollout",
           "swin_window_attention"]
