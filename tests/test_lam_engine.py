"""LAM engine behaviour: NaN handling, model state, devices, bad arguments."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import lamfast
from lamfast.lam import LAMError, LAMNaNWarning
from lamfast.lam.objective import window_objective

from conftest import NearestSR


def _image(size=16, seed=0):
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))


class SmallSR(nn.Module):
    def __init__(self, scale=2):
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 3 * scale * scale, 3, padding=1)
        self.bn = nn.BatchNorm2d(3 * scale * scale)
        self.scale = scale

    def forward(self, x):
        return nn.functional.pixel_shuffle(torch.tanh(self.bn(self.conv(x))), self.scale)


def test_nearest_upsampling_warns_in_compat_and_works_in_robust():
    model, x = NearestSR(), _image()
    # Inside the window every output pixel ties with a neighbour at every step: all steps are lost,
    # where the official code would draw a black map.
    with pytest.raises(LAMError, match=r"all 10 path steps had NaN gradients.*mode='robust'") as info:
        lamfast.lam(model, x, 20, 20, 8, fold=10)
    assert info.value.param == "mode"
    with warnings.catch_warnings():
        warnings.simplefilter("error", LAMNaNWarning)
        robust = lamfast.lam(model, x, 20, 20, 8, fold=10, mode="robust")
    assert robust.nan_steps == 0
    assert torch.isfinite(robust.attribution).all() and robust.saliency.max() == 1
    assert 0 < robust.di < 100


def test_robust_objective_matches_compat_where_defined():
    y = torch.rand(2, 3, 12, 12, dtype=torch.float64, requires_grad=True)
    c = window_objective(y, 2, 3, 5, "compat")
    r = window_objective(y, 2, 3, 5, "robust")
    assert torch.allclose(c, r)
    gc, = torch.autograd.grad(c.sum(), y)
    gr, = torch.autograd.grad(r.sum(), y)
    assert torch.allclose(gc, gr)


def test_zero_subgradient_at_zero():
    y = torch.zeros(1, 3, 6, 6, requires_grad=True)
    (g,) = torch.autograd.grad(window_objective(y, 0, 0, 4, "robust").sum(), y)
    assert torch.equal(g, torch.zeros_like(g))
    (g,) = torch.autograd.grad(window_objective(y, 0, 0, 4, "compat").sum(), y)
    assert torch.isnan(g).any()  # the official behaviour


def test_model_state_is_restored_and_parameters_frozen_during_call():
    model = SmallSR()
    model.train()
    model.conv.weight.requires_grad_(True)
    model.conv.bias.requires_grad_(False)
    seen = []
    model.register_forward_pre_hook(lambda m, i: seen.append((m.training, [p.requires_grad for p in m.parameters()])))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lamfast.lam(model, _image(), 4, 4, 8, fold=6)
    assert all(not training and not any(flags) for training, flags in seen)
    assert model.training and model.conv.weight.requires_grad and not model.conv.bias.requires_grad
    assert model.conv.weight.grad is None
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # eval mode: BatchNorm statistics untouched


def test_batched_and_unbatched_image_agree(dtype, device):
    model, x = SmallSR().to(device, dtype), _image().to(device, dtype)
    a = lamfast.lam(model, x, 2, 2, 8, fold=5)
    b = lamfast.lam(model, x[None], 2, 2, 8, fold=5)
    assert torch.equal(a.attribution, b.attribution)
    assert a.attribution.dtype == dtype and a.attribution.device == x.device and a.sr.dtype == dtype


def test_image_takes_the_models_dtype():
    model = SmallSR().double()
    r = lamfast.lam(model, _image(), 2, 2, 8, fold=3)  # a float32 image, a float64 model
    assert r.attribution.dtype == torch.float64


def test_window_at_the_border_is_inside():
    model, x = SmallSR(), _image()
    r = lamfast.lam(model, x, 32 - 8, 32 - 8, 8, fold=4)
    assert r.saliency.max() == 1


def test_all_zero_attribution_is_an_error():
    class Constant(nn.Module):
        def forward(self, x):
            ramp = torch.arange(64.0).view(1, 1, 1, 64) / 64
            return (ramp + ramp.transpose(-1, -2)).expand(x.shape[0], 3, 64, 64) + 0 * x.sum()

    with pytest.raises(LAMError, match="does not depend on the input"):
        lamfast.lam(Constant(), _image(), 4, 4, 8, fold=4)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(h=30, w=0), "outside"),
        (dict(h=0, w=27, window_size=8), "outside"),
        (dict(h=-1, w=0), "h must be"),
        (dict(h=0, w=0, window_size=1), "window_size"),
        (dict(h=0, w=0, fold=0), "fold"),
        (dict(h=0, w=0, l=4), "l must be"),
        (dict(h=0, w=0, sigma=-1.0), "sigma"),
        (dict(h=0, w=0, mode="exact"), "mode"),
        (dict(h=0, w=0, batch_size=0), "batch_size"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"window_size": 8, **kwargs}
    with pytest.raises(LAMError, match=match):
        lamfast.lam(SmallSR(), _image(), **args)


@pytest.mark.parametrize(
    "image,match",
    [
        (torch.rand(1, 16, 16), "the image has 1 channels, the model's first convolution takes 3"),
        (torch.rand(2, 3, 16, 16), r"image must be a tensor \[C,H,W\] or \[1,C,H,W\]"),
        ((torch.rand(3, 16, 16) * 255).byte(), "float"),
        (torch.full((3, 16, 16), float("nan")), "NaN"),
    ],
)
def test_bad_images(image, match):
    with pytest.raises(LAMError, match=match):
        lamfast.lam(SmallSR(), image, 0, 0, 8)


class Scaled(nn.Module):
    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward(self, x):
        return self.out(x)


@pytest.mark.parametrize(
    "forward,match",
    [
        (lambda x: nn.functional.interpolate(x, size=(40, 50)), "integer multiple"),
        (lambda x: nn.functional.interpolate(x, scale_factor=2) * float("nan"), "NaN"),
        (lambda x: x.mean(), "must return a tensor"),
    ],
)
def test_models_that_are_not_sr_models(forward, match):
    with pytest.raises(LAMError, match=match):
        lamfast.lam(Scaled(forward), _image(), 0, 0, 8, fold=3)


def test_progress_bar_runs(capsys):
    lamfast.lam(SmallSR(), _image(), 0, 0, 8, fold=4, progress=True)
    assert "LAM path" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_everything_stays_on_cuda():
    model = SmallSR().cuda()
    r = lamfast.lam(model, _image(), 0, 0, 8, fold=4)
    assert r.attribution.is_cuda and r.sr.is_cuda


class Bilinear2x(nn.Module):
    def forward(self, x):
        return nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def test_partial_nan_loss_warns_and_keeps_the_rest():
    # Left half flat: zero differences there give the official NaNs, the right half stays finite.
    x = _image(24)
    x[:, :, :12] = 0.5
    with pytest.warns(LAMNaNWarning, match=r"of 8 path steps had some NaN.*mode='robust'"):
        compat = lamfast.lam(Bilinear2x(), x, 10, 14, 16, fold=8)
    assert compat.nan_steps > 0 and compat.saliency.max() == 1
    robust = lamfast.lam(Bilinear2x(), x, 10, 14, 16, fold=8, mode="robust")
    assert robust.nan_steps == 0
    # They differ only next to the flat half, whose NaN entries compat zeroed.
    assert torch.allclose(robust.attribution[..., 13:], compat.attribution[..., 13:], atol=1e-7)
    assert not torch.allclose(robust.attribution[..., :13], compat.attribution[..., :13], atol=1e-7)


class _InPlaceScaling(torch.nn.Module):
    """Scales its input in place before a conv, as spandrel's RCAN does (x *= rgb_range)."""

    def __init__(self, in_place: bool):
        super().__init__()
        torch.manual_seed(0)
        self.in_place = in_place
        self.conv = torch.nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x):
        if self.in_place:
            x *= 255.0
        else:
            x = x * 255.0
        return torch.nn.functional.pixel_shuffle(self.conv(x), 2) / 255.0


def test_a_model_that_edits_its_input_in_place_changes_nothing():
    image = torch.rand(3, 20, 20, generator=torch.Generator().manual_seed(9))
    before = image.clone()
    edits = lamfast.lam(_InPlaceScaling(True).eval(), image, 10, 12, 8, fold=6)
    plain = lamfast.lam(_InPlaceScaling(False).eval(), image, 10, 12, 8, fold=6)
    assert torch.equal(image, before)
    assert torch.equal(edits.attribution, plain.attribution) and edits.di == plain.di
