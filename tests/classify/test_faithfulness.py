"""Deletion / insertion AUC against a direct RISE-style loop."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lamfast.faithfulness import INSERTION_SIGMA, INSERTION_SIZE, deletion_auc, insertion_auc
from lamfast.gaussian import gaussian_blur

from conftest import assert_close


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 3)).eval()


def _loop(net, img, sal, target, step, start, finish):
    """RISE's causal metric for one image, written out step by step."""
    H, W = img.shape[-2:]
    n = math.ceil(H * W / step)
    order = sal.flatten().argsort(descending=True)
    cur = start.clone()
    scores = []
    for i in range(n + 1):
        with torch.no_grad():
            scores.append(torch.softmax(net(cur[None]), -1)[0, target].item())
        idx = order[i * step:(i + 1) * step]
        cur.view(3, -1)[:, idx] = finish.reshape(3, -1)[:, idx]
    s = torch.tensor(scores)
    return ((s.sum() - s[0] / 2 - s[-1] / 2) / n).item()


@pytest.mark.parametrize("step", [7, 16])
def test_matches_a_direct_loop(step):
    net = _net()
    imgs = torch.rand(2, 3, 8, 10, generator=torch.Generator().manual_seed(1))
    sal = torch.rand(2, 8, 10, generator=torch.Generator().manual_seed(2))
    dels = deletion_auc(net, imgs, sal, target=[0, 2], step=step, batch_size=5)
    ins = insertion_auc(net, imgs, sal, target=[0, 2], step=step, batch_size=5)
    blurred = gaussian_blur(imgs, INSERTION_SIGMA, INSERTION_SIZE)
    for b, t in enumerate([0, 2]):
        assert_close(dels[b].item(), _loop(net, imgs[b], sal[b], t, step, imgs[b], torch.zeros_like(imgs[b])), "loop", dtype=torch.float32)
        assert_close(ins[b].item(), _loop(net, imgs[b], sal[b], t, step, blurred[b], imgs[b]), "loop", dtype=torch.float32)


def test_default_target_is_argmax():
    net = _net()
    imgs = torch.rand(2, 3, 8, 8)
    sal = torch.rand(2, 8, 8)
    assert torch.equal(deletion_auc(net, imgs, sal), deletion_auc(net, imgs, sal, target=net(imgs).argmax(-1)))
