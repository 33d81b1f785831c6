"""lamfast.faig against the algorithm written out here as the official code runs it: for each step a network
rebuilt from the interpolated state dict (α θ_b + (1 - α) θ_t, α = s/steps), batch 1, loss
MSELoss(reduction="sum")(gt, output), the 4-D ...weight gradients reshaped to [-1, kh, kw] and summed over the
steps; then Σ_kernel |Σ ∇ · (θ_b - θ_t) / steps| per filter, and img1's minus img2's."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lamfast
from lamfast.errors import LamfastError


class MSRResNetLike(nn.Module):
    """The MSRResNet layout (conv_first, residual blocks of conv1/conv2 without BN, upconv + pixel
    shuffle, conv_hr, conv_last, leaky ReLU 0.1, the bilinear upsampled input added), small."""

    def __init__(self, feat: int = 8, blocks: int = 2, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(3, feat, 3, 1, 1)
        self.body = nn.ModuleList(nn.ModuleDict({"conv1": nn.Conv2d(feat, feat, 3, 1, 1),
                                                 "conv2": nn.Conv2d(feat, feat, 3, 1, 1)}) for _ in range(blocks))
        self.upconv1 = nn.Conv2d(feat, feat * 4, 3, 1, 1)
        self.conv_hr = nn.Conv2d(feat, feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(feat, 3, 3, 1, 1)

    def forward(self, x):
        act = lambda t: F.leaky_relu(t, 0.1)  # noqa: E731
        feat = act(self.conv_first(x))
        out = feat
        for block in self.body:
            out = out + block["conv2"](F.relu(block["conv1"](out)))
        out = act(F.pixel_shuffle(self.upconv1(out), 2))
        out = self.conv_last(act(self.conv_hr(out)))
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


class WithBatchNorm(nn.Module):
    """A model with buffers (BatchNorm running statistics), which the official rebuild interpolates too."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.out = nn.Conv2d(6, 3, 3, padding=1)

    def forward(self, x):
        return self.out(torch.relu(self.bn(self.conv(x))))


def official_faig(base: nn.Module, target: nn.Module, img1, img2, gt, steps: int) -> torch.Tensor:
    base_sd, target_sd = base.state_dict(), target.state_dict()
    names = [k for k, v in target_sd.items() if k.endswith("weight") and v.dim() == 4]
    totals = []
    for img in (img1, img2):
        total = 0
        for step in range(steps):
            alpha = step / steps
            net = copy.deepcopy(target)
            net.load_state_dict({k: alpha * base_sd[k] + (1 - alpha) * target_sd[k] if v.is_floating_point() else v
                                 for k, v in target_sd.items()})
            net.eval()
            net.zero_grad()
            loss = nn.MSELoss(reduction="sum")(gt, net(img))
            loss.backward()
            params = dict(net.named_parameters())
            total = total + torch.cat([params[n].grad.reshape(-1, *params[n].shape[-2:]) for n in names])
        totals.append(total)
    variation = torch.cat([(base_sd[n] - target_sd[n]).reshape(-1, *base_sd[n].shape[-2:]) for n in names])
    one, two = (torch.sum(torch.sum(abs(t * variation / steps), dim=1), dim=1) for t in totals)
    return one - two


def _pair(cls, dtype, **kw):
    torch.manual_seed(0)
    base = cls(**kw).to(dtype)
    target = copy.deepcopy(base)
    with torch.no_grad():  # the fine-tuned model: the baseline moved a little
        for p in target.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for name, b in target.named_buffers():
            if b.is_floating_point():
                b.add_(0.1 * torch.rand_like(b))
    return base.eval(), target.eval()


def _images(dtype, side=8, scale=2):
    g = torch.Generator().manual_seed(1)
    noisy, blurry = (torch.rand(1, 3, side, side, generator=g, dtype=dtype) for _ in range(2))
    return noisy, blurry, torch.rand(1, 3, side * scale, side * scale, generator=g, dtype=dtype)


@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("steps, batch_size", [(20, None), (7, 3), (5, 1)])
def test_faig_equals_the_official_algorithm_on_msrresnet(dtype, rtol, steps, batch_size):
    base, target = _pair(MSRResNetLike, dtype)
    noisy, blurry, gt = _images(dtype)
    want = official_faig(base, target, noisy, blurry, gt, steps)
    got = lamfast.faig(base, target, noisy[0], blurry[0], gt[0], steps=steps, batch_size=batch_size)
    assert got.batched and got.scores.shape == want.shape == (len(got.filters),)
    scale = want.abs().max()
    assert float((got.scores - want).abs().max() / scale) <= rtol
    assert got.filters[0] == ("conv_first.weight", 0, 0) and got.filters[-1] == ("conv_last.weight", 2, 7)
    assert torch.equal(got.ranking()[:3], torch.argsort(got.scores, descending=True)[:3])


def test_buffers_are_interpolated_as_the_official_rebuild_does():
    base, target = _pair(WithBatchNorm, torch.float64)
    noisy, blurry, gt = _images(torch.float64, scale=1)
    want = official_faig(base, target, noisy, blurry, gt, 6)
    got = lamfast.faig(base, target, noisy, blurry, gt, steps=6)
    assert float((got.scores - want).abs().max() / want.abs().max()) <= 1e-10


def test_a_model_vmap_cannot_batch_runs_step_by_step_and_says_so():
    class Item(nn.Module):  # .item() inside the forward: vmap cannot batch it
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return self.conv(x) * (1.0 + 0.0 * float(self.conv.weight.sum().item()))

    base, target = _pair(Item, torch.float64)
    noisy, blurry, gt = _images(torch.float64, scale=1)
    got = lamfast.faig(base, target, noisy, blurry, gt, steps=4)
    want = official_faig(base, target, noisy, blurry, gt, 4)
    assert not got.batched and float((got.scores - want).abs().max() / want.abs().max()) <= 1e-10


def test_the_models_are_not_changed():
    base, target = _pair(MSRResNetLike, torch.float32)
    target.train()
    before = {k: v.clone() for k, v in {**base.state_dict(), **{f"t.{k}": v for k, v in target.state_dict().items()}}.items()}
    flags = [p.requires_grad for p in target.parameters()]
    lamfast.faig(base, target, *(t[0] for t in _images(torch.float32)), steps=3)
    after = {**base.state_dict(), **{f"t.{k}": v for k, v in target.state_dict().items()}}
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert target.training and [p.requires_grad for p in target.parameters()] == flags
    assert all(p.grad is None for p in target.parameters())


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=0), "steps must be an integer >= 1"),
    (dict(batch_size=0), "batch_size must be an integer >= 1"),
])
def test_bad_arguments_are_one_line(kwargs, match):
    base, target = _pair(MSRResNetLike, torch.float32)
    with pytest.raises(LamfastError, match=match):
        lamfast.faig(base, target, *(t[0] for t in _images(torch.float32)), **kwargs)


def test_models_of_other_shapes_are_refused():
    base = MSRResNetLike(feat=8)
    other = MSRResNetLike(feat=4)
    with pytest.raises(LamfastError, match="differ at 'conv_first.weight'.*same architecture"):
        lamfast.faig(base, other, *(t[0] for t in _images(torch.float32)))
    with pytest.raises(LamfastError, match="img1 must be a tensor"):
        lamfast.faig(base, copy.deepcopy(base), torch.rand(2, 3, 8, 8), torch.rand(3, 8, 8), torch.rand(3, 16, 16))


def test_a_ground_truth_of_another_shape_is_one_line():
    base, target = _pair(MSRResNetLike, torch.float32)
    noisy, blurry, _ = _images(torch.float32)
    with pytest.raises(LamfastError, match=r"gt is \(3, 8, 8\) but the model returns \(3, 16, 16\)"):
        lamfast.faig(base, target, noisy, blurry, noisy)
