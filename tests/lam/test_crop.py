"""Receptive-field crops: the cropped LAM equals the whole-image LAM.

Every case runs LAM twice, with ``crop="auto"`` and ``crop="off"`` (the plain
path the crop replaces), and asserts the tolerances of the dtype's row in
``conftest.LAM_TOLERANCE``. Cases cover conv stacks of several depths,
scales 2/3/4, windows in the middle, on every border and in the corners
(where the crop is clipped), several path parameters, several windows at
once, and models a crop would get wrong: global operators, strided and
padding networks, position-dependent outputs, SwinIR.
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lamfast
from lamfast.lam import LAMNaNWarning, influence_radius, lam_windows
from lamfast.lam.crop import crop_boxes, footprint, objective_rows
from lamfast.lam.reach import MARGIN
from lamfast.models import EDSR, TinySR

from conftest import NearestSR, optional_module, lam_tolerance


def _image(size, seed=0, dtype=torch.float32, device="cpu"):
    if isinstance(size, int):
        size = (size, size)
    return torch.rand(3, *size, generator=torch.Generator().manual_seed(seed)).to(device, dtype)


def _model(m: nn.Module, dtype, device) -> nn.Module:
    torch.manual_seed(0)
    return m.eval().to(device, dtype)


def assert_same(cropped, whole, dtype):
    tol = lam_tolerance(dtype, whole.attribution.device)
    assert whole.crop.box is None
    assert cropped.attribution.shape == whole.attribution.shape
    assert cropped.attribution.dtype == whole.attribution.dtype == dtype
    peak = whole.attribution.abs().max().item()
    assert (cropped.attribution - whole.attribution).abs().max().item() <= tol["attribution"] * peak
    assert (cropped.saliency - whole.saliency).abs().max().item() <= tol["saliency"]
    assert abs(cropped.di - whole.di) <= tol["di"]
    assert cropped.nan_steps == whole.nan_steps
    assert torch.equal(cropped.sr, whole.sr)


def both(model, x, windows, **kwargs):
    auto = lam_windows(model, x, windows, crop="auto", **kwargs)
    off = lam_windows(model, x, windows, crop="off", **kwargs)
    return auto, off


# (model factory, scale, measured reach in LR px: one per 3x3 conv at LR, bicubic adds 2)
CONV_MODELS = {
    "tinysr-d1-x2": (lambda: TinySR(scale=2, width=8, depth=1), 2, 3),
    "tinysr-d3-x3": (lambda: TinySR(scale=3, width=8, depth=3), 3, 5),
    "tinysr-d6-x4": (lambda: TinySR(scale=4, width=8, depth=6), 4, 8),
    "tinysr-d0-x4-bicubic": (lambda: TinySR(scale=4, width=8, depth=0, bicubic_skip=True), 4, 2),
    "edsr-2x16-x2": (lambda: EDSR(n_resblocks=2, n_feats=16, scale=2, rgb_range=1.0), 2, None),
    "edsr-2x16-x3": (lambda: EDSR(n_resblocks=2, n_feats=16, scale=3, rgb_range=1.0), 3, None),
    "edsr-3x16-x4": (lambda: EDSR(n_resblocks=3, n_feats=16, scale=4, rgb_range=1.0), 4, None),
}


def _windows_everywhere(lr: int, s: int, size: int):
    """Centre, the four borders, the four corners, and the last row and column."""
    n = lr * s
    mid, last = n // 2 - size // 2, n - size
    return [(mid, mid), (0, mid), (last, mid), (mid, 0), (mid, last), (0, 0), (0, last), (last, 0), (last, last),
            (s + 1, 2 * s + 3)]


@pytest.mark.parametrize("name", sorted(CONV_MODELS))
def test_conv_models_every_position(name, dtype, device):
    factory, s, _ = CONV_MODELS[name]
    model = _model(factory(), dtype, device)
    x = _image(40, dtype=dtype, device=device)
    windows = _windows_everywhere(40, s, 8)
    auto, off = both(model, x, windows, window_size=8, fold=6)
    for a, o in zip(auto, off):
        assert a.crop.box is not None, a.crop.reason  # the crop really ran
        assert_same(a, o, dtype)
    # the corner and border crops are clipped to the image: one size, moved inward
    boxes = {a.crop.box for a in auto}
    assert len({(b - t, r - lft) for t, lft, b, r in boxes}) == 1
    assert any(t == 0 for t, _, _, _ in boxes) and any(b == 40 for _, _, b, _ in boxes)


@pytest.mark.parametrize("fold,sigma,l,mode", [(50, 1.2, 9, "compat"), (50, 1.2, 9, "robust"), (13, 2.5, 15, "compat"),
                                               (1, 0.7, 3, "compat"), (20, 3.0, 7, "robust")])
def test_path_parameters(fold, sigma, l, mode, dtype, device):
    model = _model(TinySR(scale=4, width=8, depth=3, bicubic_skip=True), dtype, device)
    x = _image((36, 44), seed=3, dtype=dtype, device=device)
    for window in [(70, 90, 16), (0, 160, 16), (128, 3, 16)]:
        a = lamfast.lam(model, x, *window, fold=fold, sigma=sigma, l=l, mode=mode)
        o = lamfast.lam(model, x, *window, fold=fold, sigma=sigma, l=l, mode=mode, crop="off")
        assert a.crop.box is not None
        assert_same(a, o, dtype)


@pytest.mark.parametrize("size", [4, 16, 33])
def test_window_sizes_and_chunks(size, dtype, device):
    model = _model(EDSR(n_resblocks=1, n_feats=8, scale=3, rgb_range=1.0), dtype, device)
    x = _image(30, seed=4, dtype=dtype, device=device)
    windows = [(10, 12, size), (90 - size, 0, size), (40, 57, size)]
    auto = lam_windows(model, x, windows, fold=7, batch_size=3)  # chunks cross crop boundaries
    off = lam_windows(model, x, windows, fold=7, crop="off")
    for a, o in zip(auto, off):
        assert a.crop.box is not None
        assert_same(a, o, dtype)


def test_bundled_model_on_the_demo_image():
    from lamfast.imageio import prepare_images, read_rgb, to_tensor
    from lamfast.models import bundled_model, data_path

    model = bundled_model().model
    hr, lr = prepare_images(read_rgb(data_path("astronaut.png"))[0], 4)
    x = to_tensor(lr)
    a = lamfast.lam(model, x, 150, 110, 16)
    o = lamfast.lam(model, x, 150, 110, 16, crop="off")
    assert a.crop.box is not None and "reach" in a.crop.reason
    assert_same(a, o, torch.float32)


# ---- the radius ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in sorted(CONV_MODELS) if CONV_MODELS[n][2] is not None])
def test_measured_reach_of_conv_stacks(name):
    factory, _, reach = CONV_MODELS[name]
    model = _model(factory(), torch.float32, "cpu")
    r = influence_radius(model, (64, 64), "cpu")
    assert r.measured == reach and r.radius == reach + MARGIN


def test_reach_is_cached_and_remeasured_after_new_weights():
    model = _model(TinySR(scale=2, width=4, depth=2), torch.float32, "cpu")
    first = influence_radius(model, (50, 50), "cpu")
    calls = []
    model.register_forward_pre_hook(lambda m, i: calls.append(1))
    assert influence_radius(model, (50, 50), "cpu") is first and not calls
    # a zero body conv cuts nothing (its bias still passes), but new weights must be measured again
    with torch.no_grad():
        model.load_state_dict({k: v * 2 for k, v in model.state_dict().items()})
    influence_radius(model, (50, 50), "cpu")
    assert calls


def test_large_images_probe_on_a_small_canvas():
    model = _model(TinySR(scale=2, width=4, depth=2), torch.float32, "cpu")
    sizes = []
    model.register_forward_pre_hook(lambda m, i: sizes.append(tuple(i[0].shape[-2:])))
    r = influence_radius(model, (700, 500), "cpu")
    assert r.measured == 4 and sizes == [(80, 80)]


def test_crop_boxes_hold_the_footprint_and_its_reach():
    for s, H, W in [(2, 30, 41), (3, 17, 50), (4, 64, 64)]:
        windows = [(0, 0, 8), (H * s - 8, W * s - 8, 8), (s * 5 + 1, s * 7 + 2, 8), (3, W * s - 11, 11)]
        for radius in (0, 2, 6, 40):
            boxes = crop_boxes(windows, s, (H, W), radius)
            assert len({(b - t, r - lft) for t, lft, b, r in boxes}) == 1
            for win, (t, lft, b, r) in zip(windows, boxes):
                ft, fl, fb, fr = footprint(win, s, (H, W))
                assert 0 <= t <= max(ft - radius, 0) and min(fb + radius, H) <= b <= H
                assert 0 <= lft <= max(fl - radius, 0) and min(fr + radius, W) <= r <= W
    assert objective_rows(10, 8, 100) == (10, 19) and objective_rows(92, 8, 100) == (92, 100)


@pytest.mark.parametrize("radius,cropped", [(10, True), (1, False)])
def test_a_given_radius_is_checked(radius, cropped):
    model = _model(TinySR(scale=2, width=8, depth=4), torch.float32, "cpu")  # reach 6
    x = _image(48, seed=5)
    a = lamfast.lam(model, x, 40, 40, 8, fold=5, crop=radius)
    o = lamfast.lam(model, x, 40, 40, 8, fold=5, crop="off")
    assert (a.crop.box is not None) == cropped
    if not cropped:
        assert "differs" in a.crop.reason
    assert_same(a, o, torch.float32)


def test_radius_covering_the_image_runs_the_whole_image():
    model = _model(TinySR(scale=2, width=8, depth=5), torch.float32, "cpu")  # reach 7 + 2
    r = lamfast.lam(model, _image(20), 10, 10, 8, fold=3)
    assert r.crop.box is None and "covers the whole" in r.crop.reason


def test_bad_crop_argument():
    model = _model(TinySR(scale=2, width=4, depth=1), torch.float32, "cpu")
    for bad in ("on", -1, 2.5, True):
        with pytest.raises(lamfast.LAMError, match="crop must be"):
            lamfast.lam(model, _image(16), 0, 0, 8, crop=bad)


# ---- models a crop would get wrong ---------------------------------------------------------------------------


class ChannelAttentionSR(nn.Module):
    """RCAN-style: conv, channel attention (global average pooling), pixel shuffle.

    No ReLU inside the attention: at random init RCAN's bottleneck ReLU can be
    off for every input in [0,1], which makes the model local in fact.
    """

    def __init__(self, scale=2, width=12):
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.squeeze = nn.Sequential(nn.Conv2d(width, width, 1), nn.Sigmoid())
        self.tail = nn.Conv2d(width, 3 * scale * scale, 3, padding=1)
        self.scale = scale

    def forward(self, x):
        y = F.relu(self.head(x))
        y = y * self.squeeze(y.mean(dim=(2, 3), keepdim=True))
        return F.pixel_shuffle(self.tail(y), self.scale)


class MaskRewritingSR(ChannelAttentionSR):
    """Global, and rewrites a buffer in every forward (as HAT does with its attention masks)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mask", torch.zeros(1))

    def forward(self, x):
        self.mask.add_(1)
        return super().forward(x)


def test_a_global_model_is_probed_once_per_architecture_and_size(monkeypatch):
    """Before, a model that rewrites a buffer in its forward was probed again on every call (18 s a
    window for HAT). Now: once per model and size; a smaller input, or another instance of the same
    architecture, reuses the verdict; a larger input probes again, from the canvas known global."""
    from lamfast.lam import reach as reach_mod

    monkeypatch.setattr(reach_mod, "_GLOBAL_AT", {}, raising=False)
    probes = []
    real = reach_mod._probe
    monkeypatch.setattr(reach_mod, "_probe", lambda m, c, *rest: probes.append(c) or real(m, c, *rest))
    model = _model(MaskRewritingSR(), torch.float32, "cpu")
    x = torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(0))
    first = lamfast.lam(model, x, 8, 8, 16, fold=2)
    assert first.crop.box is None and probes == [(40, 40)]
    for h in (24, 40):
        assert lamfast.lam(model, x, h, h, 16, fold=2).crop.box is None
    assert probes == [(40, 40)]
    other = _model(MaskRewritingSR(), torch.float32, "cpu")  # another instance, other weights
    assert influence_radius(other, (32, 40), "cpu").radius is None and probes == [(40, 40)]
    assert influence_radius(other, (200, 200), "cpu").radius is None
    assert probes == [(40, 40), (80, 80), (160, 160), (200, 200)]  # doubling from above the known 40
    assert influence_radius(model, (120, 150), "cpu").radius is None and len(probes) == 4


class StridedSR(nn.Module):
    """Down by 2 then up by 4: a grid that depends on where the crop starts."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.up = nn.Conv2d(8, 3 * 16, 3, padding=1)

    def forward(self, x):
        return F.pixel_shuffle(self.up(F.relu(self.down(x))), 4)


class CoordSR(nn.Module):
    """A local conv whose output also depends on the absolute position in the image."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(5, 12, 3, padding=1)

    def forward(self, x):
        B, _, H, W = x.shape
        ys = torch.linspace(-1, 1, H, device=x.device, dtype=x.dtype).view(1, 1, H, 1).expand(B, 1, H, W)
        xs = torch.linspace(-1, 1, W, device=x.device, dtype=x.dtype).view(1, 1, 1, W).expand(B, 1, H, W)
        return F.pixel_shuffle(self.conv(torch.cat([x, ys, xs], 1)), 2)


class PadToMultipleSR(nn.Module):
    """Pads to a multiple of 8 with reflection (as window-attention SR models do), then convs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x):
        H, W = x.shape[-2:]
        x = F.pad(x, (0, (8 - W % 8) % 8, 0, (8 - H % 8) % 8), mode="reflect")
        return F.pixel_shuffle(self.conv(x), 2)[..., : 2 * H, : 2 * W]


def test_global_model_gets_no_crop_and_the_same_numbers(dtype, device):
    model = _model(ChannelAttentionSR(), dtype, device)
    x = _image(40, seed=6, dtype=dtype, device=device)
    auto, off = both(model, x, [(30, 30, 8), (0, 72, 8)], fold=6)
    for a, o in zip(auto, off):
        assert a.crop.box is None and "border" in a.crop.reason
        if x.is_cuda:  # CUDA's backward is not bit-reproducible from run to run
            tol = lam_tolerance(dtype, device)
            assert (a.attribution - o.attribution).abs().max() <= tol["attribution"] * o.attribution.abs().max()
            assert abs(a.di - o.di) <= tol["di"]
        else:
            assert torch.equal(a.attribution, o.attribution) and a.di == o.di


@pytest.mark.parametrize("model_cls", [StridedSR, CoordSR, PadToMultipleSR])
def test_crop_check_catches_what_the_probe_cannot(model_cls):
    model = _model(model_cls(), torch.float32, "cpu")
    x = _image(46, seed=7)
    windows = [(37, 41, 8), (0, 0, 8), (84, 84, 8), (50, 13, 8)]
    auto, off = both(model, x, windows, fold=5)
    if model_cls is not PadToMultipleSR:  # padding only changes crops near the far borders
        assert all(a.crop.box is None and "differs" in a.crop.reason for a in auto)
    for a, o in zip(auto, off):
        assert_same(a, o, torch.float32)


def test_spandrel_models():
    optional_module("spandrel")
    from spandrel.architectures.RCAN import RCAN
    from spandrel.architectures.SwinIR import SwinIR

    x = _image(32, seed=8)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch.meshgrid's indexing notice inside SwinIR
        swinir = SwinIR(img_size=32, embed_dim=24, depths=[4, 4], num_heads=[2, 2], window_size=8, upscale=2,
                        upsampler="pixelshuffledirect", mlp_ratio=2.0).eval()
        rcan = RCAN(scale=2, n_resgroups=1, n_resblocks=2, n_feats=16, reduction=4, rgb_range=1).eval()
        for model in (swinir, rcan):
            auto, off = both(model, x, [(24, 30, 8), (56, 0, 8)], fold=4)
            for a, o in zip(auto, off):
                assert a.crop.box is None and "border" in a.crop.reason
                assert torch.equal(a.attribution, o.attribution) and a.di == o.di
        # a tiny SwinIR is local: cropped where its window grid lines up, else caught by the check
        small = SwinIR(img_size=32, embed_dim=12, depths=[2], num_heads=[2], window_size=4, upscale=2,
                       upsampler="pixelshuffledirect", mlp_ratio=2.0).eval()
        auto, off = both(small, _image(40, seed=9), [(30, 30, 8), (31, 45, 8), (0, 70, 8)], fold=4)
    for a, o in zip(auto, off):
        assert_same(a, o, torch.float32)


# ---- compat NaN steps ------------------------------------------------------------------------------------------


def test_exact_ties_run_the_whole_image_in_compat_and_crop_in_robust():
    """Nearest x4 upsampling ties every pixel inside its 4x4 block with a neighbour, at every step: compat
    runs the whole image for the ties and loses every step there (pinned: it raises, naming robust), while
    robust has no NaN and crops. Partial ties inside a crop: the next test."""
    model = NearestSR()
    x = _image(40, seed=10)
    with pytest.raises(lamfast.LAMError, match=r"all 4 path steps had NaN gradients.*mode='robust'"):
        lamfast.lam(model, x, 60, 60, 8, fold=4)
    robust = lamfast.lam(model, x, 60, 60, 8, fold=4, mode="robust")
    off = lamfast.lam(model, x, 60, 60, 8, fold=4, mode="robust", crop="off")
    assert robust.crop.box is not None
    assert_same(robust, off, torch.float32)


def test_ties_inside_a_crop_fall_back_to_the_whole_image():
    class ContrastSR(nn.Module):
        """x gated by its local contrast, bilinear x2: exactly 0 (tied) where the path blurs the contrast away.

        The gate multiplies, so the NaN of sqrt(0) reaches the input (a ReLU on x itself would block it).
        """

        def forward(self, x):
            gate = F.relu((x - F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)).abs() - 0.1)
            return F.interpolate(x * gate, scale_factor=2, mode="bilinear", align_corners=False)

    rows, cols = torch.meshgrid(torch.arange(40), torch.arange(40), indexing="ij")
    checker = ((rows + cols) % 2).float()
    x = 0.1 + 0.8 * checker + 0.02 * _image(40, seed=11)  # contrast > 0.3 everywhere: no ties on the image
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LAMNaNWarning)
        a = lamfast.lam(ContrastSR(), x, 24, 24, 8, fold=8)
        o = lamfast.lam(ContrastSR(), x, 24, 24, 8, fold=8, crop="off")
    assert o.nan_steps > 0  # the blurred steps tie
    assert a.crop.box is None and "crop's output had exact ties" in a.crop.reason
    assert_same(a, o, torch.float32)


def test_result_records_the_path():
    model = _model(TinySR(scale=2, width=4, depth=2), torch.float32, "cpu")
    r = lamfast.lam(model, _image(48), 40, 40, 8, fold=3)
    summary = r.summary()["crop"]
    assert summary["box"] == list(r.crop.box) and summary["radius"] == r.crop.radius == 4 + MARGIN
    assert "reach 4" in summary["reason"]
    off = lamfast.lam(model, _image(48), 40, 40, 8, fold=3, crop="off").summary()["crop"]
    assert off == {"box": None, "radius": None, "reason": "crop='off'"}


@pytest.mark.parametrize("twin", [False, True], ids=["op", "twin"])
def test_crop_paths_equal_the_whole_image_path_bit_for_bit(twin, monkeypatch):
    from lamfast.lam import crop as crop_module
    from lamfast.ops import blur_path, blur_path_torch

    if twin:
        monkeypatch.setattr("lamfast.ops.blur_path", blur_path_torch)
    image = _image((37, 45), seed=12)
    for fold, sigma, l in [(6, 1.2, 9), (3, 2.0, 15), (4, 0.5, 1)]:
        path, deriv = (blur_path_torch if twin else blur_path)(image, fold, sigma, l)
        for size in [(5, 7), (20, 9), (37, 12)]:
            corners = [(0, 0), (37 - size[0], 45 - size[1]), (min(3, 37 - size[0]), min(20, 45 - size[1]))]
            boxes = [(t, lft, t + size[0], lft + size[1]) for t, lft in corners]
            got_p, got_d = crop_module.crop_paths(image, boxes, fold, sigma, l)
            for i, (t, lft, b, r) in enumerate(boxes):
                assert torch.equal(got_p[i], path[:, :, t:b, lft:r]) and torch.equal(got_d[i], deriv[:, :, t:b, lft:r])
