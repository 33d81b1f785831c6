"""lamfast.lam and lamfast.lam_windows: smoke, NaN handling, the user's model left as it was, devices and
dtypes, bad arguments (one line each)."""
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


class OneFrame(nn.Module):
    """A video model of one frame: [B,1,C,H,W] -> the image model's output of that frame."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, clip):
        return self.model(clip[:, 0])


class Scaled(nn.Module):
    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward(self, x):
        return self.out(x)


def _snapshot(model: nn.Module) -> dict:
    return {"params": [(name, p, p.detach().clone(), p.dtype, p.device, p.requires_grad, p.grad)
                       for name, p in model.named_parameters()],
            "buffers": [(name, b, b.detach().clone()) for name, b in model.named_buffers()],
            "training": [(name, m.training) for name, m in model.named_modules()]}


def _same_as(model: nn.Module, before: dict) -> None:
    after = _snapshot(model)
    for (n, p, v, dt, dev, rg, g), (n2, p2, v2, dt2, dev2, rg2, g2) in zip(before["params"], after["params"]):
        assert n == n2 and p is p2, n  # the same Parameter objects
        assert torch.equal(v, v2) and dt == dt2 and dev == dev2 and rg == rg2 and g is g2 is None, n
    for (n, b, v), (n2, b2, v2) in zip(before["buffers"], after["buffers"]):
        assert n == n2 and b is b2 and torch.equal(v, v2), n
    assert before["training"] == after["training"]


def _mixed_state_model() -> nn.Module:
    """Train mode on the whole model except its BatchNorm; one parameter frozen by its user."""
    model = SmallSR()
    model.train()
    model.bn.eval()
    model.conv.bias.requires_grad_(False)
    return model


CALLS = {
    "lam": lambda m, x: lamfast.lam(m, x, 4, 4, 8, fold=3),
    "lam_windows": lambda m, x: lamfast.lam_windows(m, x, "grid:8", fold=2),
    "di_map": lambda m, x: lamfast.di_map(m, x, 16, fold=2),
    "clip": lambda m, x: lamfast.lam(OneFrame(m), x[None], 4, 4, 8, fold=2),
    "infer_scale": lambda m, x: lamfast.lam.infer_scale(m),
    "erf": lambda m, x: lamfast.erf(m, x[None]),
    "failing (window outside)": lambda m, x: lamfast.lam(m, x, 400, 4, 8, fold=3),
    "failing (model fails)": lambda m, x: lamfast.lam(m, torch.rand(5, 16, 16), 0, 0, 8, fold=3),
    "failing (device)": lambda m, x: lamfast.lam(m, x, 0, 0, 8, fold=3, device="meta"),
}


class Bilinear2x(nn.Module):
    def forward(self, x):
        return nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


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


class TestLAMModelUntouched:
    """The user's model is theirs: never moved, cast or left changed."""

    def test_model_state_is_restored_and_parameters_frozen_during_call(self):
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

    def test_a_device_that_is_not_the_models_is_refused_and_the_model_stays(self):
        model = SmallSR()
        with pytest.raises(LAMError, match="lamfast never moves your model") as info:
            lamfast.lam(model, _image(), 0, 0, 8, fold=2, device="meta")
        assert info.value.param == "device" and "\n" not in str(info.value)
        assert all(p.device.type == "cpu" for p in model.parameters())
        r = lamfast.lam(model, _image(), 0, 0, 8, fold=2, device="cpu")  # the model's own device: fine
        assert r.attribution.device.type == "cpu"

    @pytest.mark.parametrize("call", list(CALLS))
    def test_the_users_model_is_never_moved_cast_or_mutated(self, call):
        """Parameters (the same objects, values, dtype, device, requires_grad, no .grad), buffers and every
        module's train/eval flag are as they were after any call, a failing one included."""
        model = _mixed_state_model()
        before = _snapshot(model)
        try:
            CALLS[call](model, _image())
        except lamfast.errors.LamfastError:
            assert call.startswith("failing")
        else:
            assert not call.startswith("failing")
        _same_as(model, before)

    def test_a_model_that_edits_its_input_in_place_changes_nothing(self):
        image = torch.rand(3, 20, 20, generator=torch.Generator().manual_seed(9))
        before = image.clone()
        edits = lamfast.lam(_InPlaceScaling(True).eval(), image, 10, 12, 8, fold=6)
        plain = lamfast.lam(_InPlaceScaling(False).eval(), image, 10, 12, 8, fold=6)
        assert torch.equal(image, before)
        assert torch.equal(edits.attribution, plain.attribution) and edits.di == plain.di


class TestLAMDeviceDtype:
    """Devices and dtypes: the model's own."""

    def test_an_image_and_the_same_image_as_a_one_frame_clip_agree(self, dtype, device):
        """An image [C,H,W] runs through the model as it is; a clip [T,C,H,W] runs as T·C channels through a
        video model: two different paths through the engine, one attribution."""
        model, x = SmallSR().to(device, dtype), _image().to(device, dtype)
        a = lamfast.lam(model, x, 2, 2, 8, fold=5)
        b = lamfast.lam(OneFrame(model), x[None], 2, 2, 8, fold=5)
        assert isinstance(b, lamfast.VideoLAMResult) and b.frame is None
        assert b.attribution.shape == (1, *a.attribution.shape)
        assert torch.allclose(b.attribution[0], a.attribution, rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-6)
        assert abs(a.di - b.di) <= 1e-6 * max(1.0, a.di)
        assert a.attribution.dtype == dtype and a.attribution.device == x.device and a.sr.dtype == dtype

    def test_image_takes_the_models_dtype(self):
        model = SmallSR().double()
        r = lamfast.lam(model, _image(), 2, 2, 8, fold=3)  # a float32 image, a float64 model
        assert r.attribution.dtype == torch.float64

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    def test_everything_stays_on_cuda(self):
        model = SmallSR().cuda()
        r = lamfast.lam(model, _image(), 0, 0, 8, fold=4)
        assert r.attribution.is_cuda and r.sr.is_cuda


class TestLAMErrors:
    """Bad arguments: one line, the argument named."""

    def test_all_zero_attribution_is_an_error(self):
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
            (dict(h=0, w=0, crop="wide"), "crop"),
            (dict(h=0, w=0, frame=0), "frame"),
            (dict(h=0, w=0, params=lamfast.LAMParams(), fold=10), "either as params or one by one"),
            (dict(h=0, w=0, params={"fold": 10}), "params must be a LAMParams"),
        ],
    )
    def test_bad_arguments(self, kwargs, match):
        args = {"window_size": 8, **kwargs}
        with pytest.raises(LAMError, match=match) as info:
            lamfast.lam(SmallSR(), _image(), **args)
        assert "\n" not in str(info.value)

    def test_params_and_fields_give_one_result(self):
        x, model = _image(), SmallSR()
        a = lamfast.lam(model, x, 2, 2, 8, fold=5, sigma=1.0, mode="robust")
        b = lamfast.lam(model, x, 2, 2, 8, params=lamfast.LAMParams(fold=5, sigma=1.0, mode="robust"))
        assert torch.equal(a.attribution, b.attribution) and a.params == b.params

    def test_lam_params_are_keyword_only_and_hold_no_speed_knob(self):
        with pytest.raises(TypeError):
            lamfast.LAMParams(50)  # noqa: the positional form is gone
        with pytest.raises(TypeError):
            lamfast.LAMParams(batch_size=4)
        assert set(lamfast.LAMParams().defining()) == {"fold", "sigma", "l", "mode"}

    @pytest.mark.parametrize(
        "image,match",
        [
            (torch.rand(1, 16, 16), "the input has 1 channels, the model's first convolution takes 3"),
            (torch.rand(2, 3, 16, 16), r"a \[T,C,H,W\] input is a clip for a video model"),
            (torch.rand(16, 16), r"image must be an image \[C,H,W\] or a clip \[T,C,H,W\]"),
            ((torch.rand(3, 16, 16) * 255).byte(), "float"),
            (torch.full((3, 16, 16), float("nan")), "NaN"),
        ],
    )
    def test_bad_images(self, image, match):
        with pytest.raises(LAMError, match=match) as info:
            lamfast.lam(SmallSR(), image, 0, 0, 8)
        assert "\n" not in str(info.value)

    @pytest.mark.parametrize(
        "forward,match",
        [
            (lambda x: nn.functional.interpolate(x, size=(40, 50)), "integer multiple"),
            (lambda x: nn.functional.interpolate(x, scale_factor=2) * float("nan"), "NaN"),
            (lambda x: x.mean(), "must return a tensor"),
        ],
    )
    def test_models_that_are_not_sr_models(self, forward, match):
        with pytest.raises(LAMError, match=match):
            lamfast.lam(Scaled(forward), _image(), 0, 0, 8, fold=3)


class TestLAMNaN:
    """compat's NaN steps and robust mode."""

    def test_nearest_upsampling_warns_in_compat_and_works_in_robust(self):
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

    def test_robust_objective_matches_compat_where_defined(self):
        y = torch.rand(2, 3, 12, 12, dtype=torch.float64, requires_grad=True)
        c = window_objective(y, 2, 3, 5, "compat")
        r = window_objective(y, 2, 3, 5, "robust")
        assert torch.allclose(c, r)
        gc, = torch.autograd.grad(c.sum(), y)
        gr, = torch.autograd.grad(r.sum(), y)
        assert torch.allclose(gc, gr)

    def test_zero_subgradient_at_zero(self):
        y = torch.zeros(1, 3, 6, 6, requires_grad=True)
        (g,) = torch.autograd.grad(window_objective(y, 0, 0, 4, "robust").sum(), y)
        assert torch.equal(g, torch.zeros_like(g))
        (g,) = torch.autograd.grad(window_objective(y, 0, 0, 4, "compat").sum(), y)
        assert torch.isnan(g).any()  # the official behaviour

    def test_partial_nan_loss_warns_and_keeps_the_rest(self):
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


class TestLAM:
    """lamfast.lam: smoke."""

    def test_window_at_the_border_is_inside(self):
        model, x = SmallSR(), _image()
        r = lamfast.lam(model, x, 32 - 8, 32 - 8, 8, fold=4)
        assert r.saliency.max() == 1

    def test_smoke(self):
        r = lamfast.lam(SmallSR(), _image(), 4, 4, 8, fold=3)
        assert isinstance(r, lamfast.LAMResult) and not isinstance(r, lamfast.VideoLAMResult)
        assert r.attribution.shape == (3, 16, 16) and r.saliency.shape == (16, 16) and r.sr.shape == (3, 32, 32)
        assert (r.window, r.scale, r.params.fold) == ((4, 4, 8), 2, 3) and r.kde().shape == (16, 16)
        assert r.di == (1 - r.gini) * 100 and r.summary()["window_size"] == 8

    def test_the_bar_counts_windows_in_words(self, capsys):
        import time

        class Slow(SmallSR):
            def forward(self, x):
                time.sleep(0.05)
                return super().forward(x)

        lamfast.lam(Slow(), _image(), 0, 0, 8, fold=6, batch_size=1, progress=True)
        err = capsys.readouterr().err
        # every frame of the bar has its total: a bar shown before the total was known drew "0point [00:00, ...]"
        assert "LAM path (1 window)" in err and "0point [" not in err and "/6" in err


def test_the_lam_package_and_the_lam_function_are_both_reachable():
    import lamfast.lam.windows as W

    assert lamfast.lam.windows is W and callable(W.parse_windows)  # "'function' object has no attribute 'windows'"
    from lamfast import lam

    model = lamfast.load_model().model
    x = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(0))
    r = lam(model, x, 8, 8, 16, fold=3)
    assert r.window == (8, 8, 16) and r.di > 0
    assert "window_size" in str(__import__("inspect").signature(lamfast.lam))


def test_sigma_zero_is_refused_for_what_it_is():
    with pytest.raises(lamfast.LAMError, match="with sigma 0 every point of the blur path is the image") as info:
        lamfast.LAMParams(sigma=0)
    assert info.value.param == "sigma"


def test_a_half_precision_model_gets_a_dtype_error():
    model = lamfast.load_model().model.to(torch.bfloat16)
    x = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(0))
    with pytest.raises(lamfast.LAMError, match=r"runs in torch.bfloat16; LAM needs float32 or float64") as info:
        lamfast.lam(model, x, 8, 8, 16, fold=3)
    assert info.value.param == "model"


def test_nan_warning_says_what_it_means_and_what_to_do():
    from lamfast.lam import LAMNaNWarning

    x = _image(24)
    x[:, :, :12] = 0.5  # flat: exact ties, the official NaN steps

    class Bilinear2x(nn.Module):
        def forward(self, t):
            return nn.functional.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lamfast.lam(Bilinear2x(), x, 10, 14, 16, fold=8)
    text = " ".join(str(w.message) for w in caught if issubclass(w.category, LAMNaNWarning))
    assert "these are the official numbers" in text and "mode='robust'" in text and "when both give the same DI" in text
