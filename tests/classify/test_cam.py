"""lamfast.cam against pytorch-grad-cam (the oracle), plus behaviour it gets wrong."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import lamfast.cam as cams
from lamfast.cam.base import CAMError, projection_2d

from conftest import ATTR_TOLERANCE, assert_close, optional_module

SHARED = ["GradCAM", "GradCAMPlusPlus", "XGradCAM", "EigenCAM", "EigenGradCAM", "LayerCAM", "HiResCAM"]


@pytest.fixture(scope="module")
def pgc():
    return optional_module("pytorch_grad_cam")


def _numpy_projection_with_lamfast_sign(original):
    """pytorch-grad-cam's numpy-SVD projection, then lamfast's sign rule.

    The rule (the component points the way the channel sum does) is the one
    thing lamfast adds on purpose; the oracle keeps its own SVD, centring and
    NaN handling, so everything else is still checked against it.
    """
    def projection(activation_batch):
        out = original(activation_batch)
        direction = (out.reshape(len(out), -1) * activation_batch.sum(axis=1).reshape(len(out), -1)).sum(axis=1)
        return np.where(direction[:, None, None] < 0, -out, out).astype(np.float32)
    return projection


@pytest.fixture
def pgc_signed(pgc, monkeypatch):
    """pytorch-grad-cam whose principal components follow lamfast's sign rule."""
    import importlib

    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    signed = _numpy_projection_with_lamfast_sign(get_2d_projection)
    for name in ("base_cam", "eigen_cam", "eigen_grad_cam", "layer_cam", "hirescam"):
        monkeypatch.setattr(importlib.import_module(f"pytorch_grad_cam.{name}"), "get_2d_projection", signed)
    return pgc


def _net(dtype=torch.float32, device="cpu"):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5),
    ).eval().to(device, dtype)


def _x(b=3, dtype=torch.float32, device="cpu"):
    return torch.rand(b, 3, 32, 40, generator=torch.Generator().manual_seed(1)).to(device, dtype)


# EigenCAM and EigenGradCAM are compared with pytorch-grad-cam patched to lamfast's sign
# rule (pgc_signed): the sign of its numpy SVD is LAPACK's choice and flips between builds.
# AblationCAM takes one layer; it is compared on a ReLU output (min 0), where
# pytorch-grad-cam's ablation value does not drift from row to row.
CASES = [(m, layers) for m in SHARED + ["ScoreCAM"] for layers in ([4], [4, 2])] + [("AblationCAM", [5])]


@pytest.mark.parametrize("method,layers", CASES)
def test_parity_with_pytorch_grad_cam_per_image_targets(pgc_signed, method, layers, dtype, device):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    net, x = _net(dtype, device), _x(dtype=dtype, device=device)
    targets = [1, 3, 4]
    with getattr(pgc_signed, method)(net, [net[i] for i in layers]) as cam:
        expected = cam(x, [ClassifierOutputTarget(t) for t in targets])
    with getattr(cams, method)(net, [net[i] for i in layers]) as cam:
        got = cam(x, targets)
    assert got.shape == (3, 32, 40) and got.dtype == torch.float32 and got.device == x.device
    assert np.abs(got.cpu().numpy() - expected).max() <= ATTR_TOLERANCE[dtype]["cam"]


@pytest.mark.parametrize("method", ["GradCAM", "XGradCAM", "GradCAMPlusPlus", "LayerCAM", "HiResCAM"])
def test_parity_eigen_smooth_and_aug_smooth(pgc_signed, method):
    net, x = _net(), _x(2)
    with getattr(pgc_signed, method)(net, [net[4]]) as cam:
        expected_aug = cam(x, None, aug_smooth=True)
        expected_eigen = cam(x, None, eigen_smooth=True)
    with getattr(cams, method)(net, [net[4]]) as cam:
        got_aug = cam(x, None, aug_smooth=True)
        got_eigen = cam(x, None, eigen_smooth=True)
    assert_close(got_aug, expected_aug, "cam_smooth")
    assert_close(got_eigen, expected_eigen, "cam_smooth")


@pytest.mark.parametrize("shape", [(4, 16, 6, 7), (3, 8, 9, 10)], ids=["hw>C", "hw<=C"])
def test_projection_matches_numpy_svd_up_to_sign(pgc, shape):
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    a = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    a[0, 0, 0, 0] = float("nan")  # zeroed by both
    ours = projection_2d(a).numpy()
    theirs = get_2d_projection(a.numpy())
    for o, t in zip(ours, theirs):
        sign = 1.0 if np.abs(o - t).max() <= np.abs(o + t).max() else -1.0  # a singular vector's sign is free
        assert_close(sign * o, t, "projection")


def test_projection_sign_follows_the_activations():
    # A bright blob on a dim background: the component is positive on the blob
    # whatever sign LAPACK picks, and flipping the input's sign flips the map.
    a = torch.rand(2, 6, 9, 9, generator=torch.Generator().manual_seed(3)) * 0.1
    a[:, :, 2:5, 3:6] += torch.rand(2, 6, 1, 1, generator=torch.Generator().manual_seed(4)) + 1
    p = projection_2d(a)
    assert (p[:, 2:5, 3:6] > 0).all() and (p.flatten(1).argmax(1) // 9 >= 2).all()
    assert torch.allclose(projection_2d(-a), -p, atol=1e-5)
    assert projection_2d(torch.zeros(1, 4, 3, 3)).abs().max() == 0


def test_one_target_serves_the_whole_batch(dtype, device):
    net, x = _net(dtype, device), _x(3, dtype, device)
    with cams.GradCAM(net, [net[4]]) as cam:
        one = cam(x, [2])
        each = cam(x, [2, 2, 2])
    assert torch.equal(one, each)
    assert all(one[b].max() > 0.99 for b in range(3))  # pytorch-grad-cam gives zeros for images 2..B


def test_default_target_is_argmax_per_image():
    net, x = _net(), _x(3)
    with cams.GradCAM(net, [net[4]]) as cam:
        default = cam(x)
        explicit = cam(x, net(x).argmax(-1).tolist())
    assert torch.equal(default, explicit)


def test_callable_targets():
    net, x = _net(), _x(2)
    with cams.GradCAM(net, [net[4]]) as cam:
        by_index = cam(x, [3, 0])
        by_fn = cam(x, [lambda logits: logits[3], lambda logits: logits[0]])
    assert torch.equal(by_index, by_fn)


def test_hooks_are_removed_and_model_restored():
    net = _net()
    net.train()
    seen = []
    net[4].register_forward_hook(lambda *a: seen.append(sum(len(m._forward_hooks) for m in net.modules())))
    before = [len(m._forward_hooks) for m in net.modules()]
    with cams.GradCAM(net, [net[4], net[2]]) as cam:
        cam(_x(1))
        assert seen == [3]  # during the call: the two CAM hooks and the probe
        assert [len(m._forward_hooks) for m in net.modules()] == before  # between calls: none
    assert [len(m._forward_hooks) for m in net.modules()] == before
    assert net.training and all(p.requires_grad and p.grad is None for p in net.parameters())


@pytest.mark.parametrize(
    "targets,match",
    [([7], "out of range"), ([1, 2], "2 targets for a batch of 3"), (["cat"], "class index or a callable")],
)
def test_bad_targets(targets, match):
    net = _net()
    from lamfast.targets import TargetError

    with cams.GradCAM(net, [net[4]]) as cam, pytest.raises(TargetError, match=match):
        cam(_x(3), targets)


def test_ablation_cam_takes_several_layers():
    """Each layer is ablated on its own; the maps combine as for every method (mean of the
    per-layer maps, min-max scaled), so two layers give exactly that of the two one-layer maps."""

    from lamfast.cam.base import minmax_per_image

    net = _net()
    x = _x(2)
    with cams.AblationCAM(net, [net[5], net[3]]) as cam:
        both = cam(x, [1])
    per_layer = []
    for layer in (net[5], net[3]):
        with cams.AblationCAM(net, [layer]) as cam:
            per_layer.append(cam(x, [1]))
    want = minmax_per_image(torch.stack(per_layer, dim=1).clamp_min(0).mean(dim=1))
    torch.testing.assert_close(both, want, rtol=1e-5, atol=1e-6)


class _BatchTiedHead(nn.Module):
    """Upper layers that reshape by the batch size read at the top: the one-row replay cannot serve them."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Linear(8 * 8 * 10, 5)

    def forward(self, x):
        n = x.shape[0]
        y = self.act(self.conv(x))
        return self.head(nn.functional.avg_pool2d(y, 4).reshape(n, -1))


@pytest.mark.parametrize("tied", [False, True])
def test_ablation_cam_runs_the_layers_below_once_and_checks_it(monkeypatch, tied):
    """The layers below the target run on one row, not on the batch of ablations, when that gives the
    plain replay's numbers (checked on each image's first batch); a model whose upper layers depend on
    the input's batch size falls back to the plain replay. Both equal the plain replay to 1e-6."""
    net = _BatchTiedHead().eval() if tied else _net()
    bottom, layer = (net.conv, net.act) if tied else (net[0], net[5])
    rows = []
    bottom.register_forward_pre_hook(lambda m, a: rows.append(a[0].shape[0]))
    x = _x(2)
    monkeypatch.setattr(cams.AblationCAM, "batch_size", 4)
    with cams.AblationCAM(net, [layer]) as cam:
        fast = cam(x, [1, 3])
        replay = cam.last_replay
    monkeypatch.setattr(cams.AblationCAM, "_one_row_agrees", lambda *a: False)
    rows_fast, rows[:] = list(rows), []
    with cams.AblationCAM(net, [layer]) as cam:
        plain = cam(x, [1, 3])
    torch.testing.assert_close(fast, plain, rtol=1e-6, atol=1e-6)
    assert replay == ("whole model per row" if tied else "one row below the layer")
    if not tied:  # 16 channels in batches of 4, 2 images: 2 + (4 + 1 + 3) + 4 rows against 2 + 2 * 16
        assert (sum(rows_fast), sum(rows)) == (14, 34)


def test_cam_methods_keep_no_per_call_state():
    """Everything a method needs reaches its hook as arguments: after a call the object holds no tensors."""
    net = _net()
    for name in ("GradCAM", "ScoreCAM", "AblationCAM"):
        with getattr(cams, name)(net, [net[5]]) as cam:
            cam(_x(2), [0])
            held = [k for k, v in vars(cam).items() if isinstance(v, torch.Tensor) or (
                isinstance(v, list) and any(isinstance(t, torch.Tensor) for t in v))]
            assert held == [], (name, held)


@pytest.mark.parametrize("name", ["GradCAM", "ScoreCAM", "AblationCAM"])
def test_cam_without_with_records_only_during_its_call(name):
    """A CAM object used without ``with`` must not keep hooks on the model: forwards of the model
    outside a call record nothing (before the fix, 100 forwards left 100 tensors on the object)."""
    net = _net()
    cam = getattr(cams, name)(net, [net[5]])
    first = cam(_x(2), [0])
    for _ in range(100):
        net(_x(2))
    held = sum(len(v) for v in vars(cam).values() if isinstance(v, list) and v and isinstance(v[0], torch.Tensor))
    assert held == 0
    assert not net[5]._forward_hooks  # the model is as it was
    torch.testing.assert_close(cam(_x(2), [0]), first)  # and the object still works


def test_empty_layers_and_bad_input():
    with pytest.raises(CAMError, match="target_layers is empty"):
        cams.GradCAM(_net(), [])
    net = _net()
    with cams.GradCAM(net, [net[4]]) as cam, pytest.raises(CAMError, match=r"\[B,C,H,W\]"):
        cam(torch.rand(3, 32, 32))


@pytest.fixture(scope="module")
def timm_models():
    timm = optional_module("timm")
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=7, img_size=64).eval()
    swin = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, num_classes=7, img_size=112,
                             depths=(1, 1, 1, 1)).eval()
    return {
        "vit": (vit, [vit.blocks[-1].norm1], cams.vit_reshape(1), torch.rand(2, 3, 64, 64)),
        "swin": (swin, [swin.layers[-1]], cams.swin_reshape, torch.rand(2, 3, 112, 112)),  # NHWC stage output
    }


@pytest.mark.parametrize("arch", ["vit", "swin"])
@pytest.mark.parametrize("method", ["GradCAM", "LayerCAM", "EigenCAM"])
def test_transformers_from_timm(pgc_signed, timm_models, arch, method):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, layers, reshape, x = timm_models[arch]
    # Classes 2 and 3: at this random init the ViT's class-1 Grad-CAM is negative at every
    # token, so ReLU leaves nothing to compare (pytorch-grad-cam agrees); these are not.
    with getattr(cams, method)(model, layers, reshape_transform=reshape) as cam:
        maps = cam(x, [2, 3])
    assert maps.shape == (2, *x.shape[-2:]) and torch.isfinite(maps).all()
    assert all(m.max() > 0.99 for m in maps)  # not all zero
    with getattr(pgc_signed, method)(model, layers, reshape_transform=reshape) as cam:
        expected = cam(x, [ClassifierOutputTarget(2), ClassifierOutputTarget(3)])
    assert_close(maps, expected, "cam_smooth")


def test_reshape_helpers_reject_odd_token_counts():
    with pytest.raises(ValueError, match="square grid"):
        cams.vit_reshape(0)(torch.rand(1, 17, 8))
    with pytest.raises(ValueError, match="square grid"):
        cams.swin_reshape(torch.rand(1, 15, 8))
