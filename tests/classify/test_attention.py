"""Attention maps on timm models (random init) with fused attention left on."""
from __future__ import annotations

import pytest
import torch

from lamfast.attention import AttentionRecorder, cls_attention, gradient_weighted, rollout, swin_window_attention

from conftest import optional_module


@pytest.fixture(scope="module")
def vit():
    timm = optional_module("timm")
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=5, img_size=64).eval()


def _x(b=2, size=64):
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_recorder_sees_fused_attention_and_restores_it(vit):
    assert any(getattr(m, "fused_attn", False) for m in vit.modules())  # timm's default here
    before = [m.fused_attn for m in vit.modules() if hasattr(m, "fused_attn")]
    x = _x()
    with torch.no_grad():
        reference = vit(x)
    with torch.no_grad(), AttentionRecorder(vit) as rec:
        explicit = vit(x)
    assert len(rec.maps) == 12 and rec.maps[0].shape == (2, 3, 17, 17)
    assert torch.allclose(rec.maps[0].sum(-1), torch.ones(2, 3, 17))  # softmax rows
    assert torch.allclose(explicit, reference, atol=1e-5)  # the explicit path gives the same logits
    assert [m.fused_attn for m in vit.modules() if hasattr(m, "fused_attn")] == before


def test_cls_attention(vit):
    x = _x()
    per_head = cls_attention(vit, x, head_fusion=None)
    fused = cls_attention(vit, x)
    assert per_head.shape == (2, 3, 4, 4) and fused.shape == (2, 4, 4)
    assert torch.allclose(per_head.mean(1), fused)


def test_rollout_matches_a_direct_computation(vit):
    x = _x()
    got = rollout(vit, x, discard_ratio=0.0)
    with torch.no_grad(), AttentionRecorder(vit) as rec:
        vit(x)
    for b in range(2):
        r = torch.eye(17)
        for a in rec.maps:
            m = (a[b].mean(0) + torch.eye(17)) / 2
            r = (m / m.sum(-1, keepdim=True)) @ r
        row = r[0, 1:].reshape(4, 4)
        assert torch.allclose(got[b], row / row.max(), atol=1e-5)
    discarded = rollout(vit, x, discard_ratio=0.5)
    assert discarded.shape == (2, 4, 4) and torch.isfinite(discarded).all()


def test_gradient_weighted(vit):
    x = _x()
    maps = gradient_weighted(vit, x, target=[1, 3])
    assert maps.shape == (2, 4, 4) and maps.amin() >= 0 and torch.allclose(maps.flatten(1).amax(1), torch.ones(2))
    assert all(p.grad is None for p in vit.parameters())
    with pytest.raises(ValueError, match="out of range"):
        gradient_weighted(vit, x, target=9)


def test_swin_window_attention():
    timm = optional_module("timm")
    torch.manual_seed(0)
    swin = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, num_classes=5, img_size=112,
                             depths=(1, 1, 1, 1)).eval()
    maps = swin_window_attention(swin, _x(2, 112))
    assert len(maps) == 4
    assert maps[0].shape == (2 * 16, 3, 49, 49)  # 28x28 tokens in 7x7 windows
    assert torch.allclose(maps[0].sum(-1), torch.ones_like(maps[0].sum(-1)), atol=1e-5)
