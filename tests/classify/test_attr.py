"""lamfast.attr against captum (the oracle): Saliency, InputXGradient, IntegratedGradients, NoiseTunnel."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lamfast.attr import AttrError, BlurIG, Combined, GuidedBackprop, InputXGradient, IntegratedGradients, NoiseTunnel, Saliency

from conftest import ATTR_TOLERANCE, assert_close

captum_attr = pytest.importorskip("captum.attr", reason="captum (test extra) is the oracle")


def _net(dtype=torch.float32, device="cpu"):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.Tanh(), nn.Conv2d(6, 6, 3, stride=2, padding=1), nn.Softplus(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 4)).eval().to(device, dtype)


def _x(b=3, dtype=torch.float32, device="cpu"):
    return torch.rand(b, 3, 12, 10, generator=torch.Generator().manual_seed(1)).to(device, dtype)


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


@pytest.mark.parametrize("name", ["Saliency", "InputXGradient"])
def test_gradient_methods(name, dtype, device):
    net, x = _net(dtype, device), _x(dtype=dtype, device=device)
    ours = {"Saliency": Saliency, "InputXGradient": InputXGradient}[name](net).attribute(x, target=[0, 2, 3])
    theirs = getattr(captum_attr, name)(net).attribute(x, target=[0, 2, 3])
    assert ours.dtype == dtype and ours.device == x.device
    assert _rel(ours, theirs) <= ATTR_TOLERANCE[dtype]["captum"]


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle",
                                    "riemann_trapezoid"])
def test_integrated_gradients(method, dtype, device):
    net, x = _net(dtype, device), _x(dtype=dtype, device=device)
    base = torch.rand_like(x) * 0.1
    ours, d1 = IntegratedGradients(net).attribute(x, baselines=base, target=[1, 0, 3], n_steps=16, method=method,
                                                 internal_batch_size=10, return_convergence_delta=True)
    theirs, d2 = captum_attr.IntegratedGradients(net).attribute(x, baselines=base, target=[1, 0, 3], n_steps=16,
                                                               method=method, return_convergence_delta=True)
    assert ours.dtype == dtype and ours.device == x.device
    assert _rel(ours, theirs) <= ATTR_TOLERANCE[dtype]["captum"]
    assert (d1 - d2).abs().max().item() <= ATTR_TOLERANCE[dtype]["captum"]


def test_integrated_gradients_is_complete():
    net, x = _net(), _x(2)
    attr, delta = IntegratedGradients(net).attribute(x, target=2, n_steps=64, return_convergence_delta=True)
    assert_close(delta, torch.zeros_like(delta), "completeness")  # sum of attributions = F(x) - F(0)


@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_noise_tunnel(nt_type, dtype, device):
    net, x = _net(dtype, device), _x(2, dtype, device)
    torch.manual_seed(5)
    ours = NoiseTunnel(Saliency(net)).attribute(x, nt_type=nt_type, nt_samples=4, stdevs=0.2, target=[1, 3])
    torch.manual_seed(5)
    theirs = captum_attr.NoiseTunnel(captum_attr.Saliency(net)).attribute(x, nt_type=nt_type, nt_samples=4,
                                                                          stdevs=0.2, target=[1, 3])
    assert _rel(ours, theirs) <= ATTR_TOLERANCE[dtype]["captum"]


def test_bad_input():
    from lamfast.targets import TargetError

    net, x = _net(), _x(2)
    with pytest.raises(TargetError, match="out of range"):
        Saliency(net).attribute(x, target=9)
    with pytest.raises(TargetError, match="2 targets for a batch of 3"):
        Saliency(net).attribute(_x(3), target=[1, 2])
    with pytest.raises(TargetError, match="not callables"):
        Saliency(net).attribute(x, target=[lambda row: row[0]])
    with pytest.raises(AttrError, match="method must be"):
        IntegratedGradients(net).attribute(x, target=1, method="simpson")
    with pytest.raises(AttrError, match="nt_type"):
        NoiseTunnel(Saliency(net)).attribute(x, nt_type="smooth", target=1)


class _ReluNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1),
                                  nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4))

    def forward(self, x):
        return self.head(self.body(x))


def test_guided_backprop_matches_captum():
    net, x = _ReluNet().eval(), _x()
    ours = GuidedBackprop(net).attribute(x, target=[0, 1, 3])
    theirs = captum_attr.GuidedBackprop(net).attribute(x, target=[0, 1, 3])
    assert_close(ours, theirs, "captum_hooks")
    assert net.body[3].inplace and not any(m._backward_hooks for m in net.modules())


def test_blur_ig_uses_each_steps_own_delta(dtype, device):
    from lamfast import blur_path

    net, x = _net(dtype, device), _x(2, dtype, device)
    n, sigma = 8, 2.0
    ours = BlurIG(net).attribute(x, target=[1, 2], max_sigma=sigma, n_steps=n, internal_batch_size=6)
    path, _ = blur_path(x, n, sigma, 13)
    start, _ = blur_path(x, 1, 0.0, 13)  # the image itself
    expected = torch.zeros_like(x)
    prev = None
    from lamfast.gaussian import gaussian_taps  # γ_0: the most blurred image, built independently
    taps = torch.tensor(gaussian_taps(sigma, 13), dtype=torch.float64)
    k2 = (taps[:, None] * taps[None, :]).to(device, dtype)
    pad = torch.nn.functional.pad(x, (6, 6, 6, 6), mode="reflect")
    prev = torch.nn.functional.conv2d(pad, k2.expand(3, 1, 13, 13), groups=3)
    for j in range(n):
        g = Saliency(net).attribute(path[:, j], target=[1, 2], abs=False)
        expected += g * (path[:, j] - prev)
        prev = path[:, j]
    assert torch.allclose(path[:, -1], start[:, 0])
    assert _rel(ours, expected) <= ATTR_TOLERANCE[dtype]["captum"]


def test_blur_ig_completeness():
    net, x = _net(), _x(2)
    attr = BlurIG(net).attribute(x, target=[0, 3], max_sigma=3.0, n_steps=128)
    from lamfast import blur_path

    path, _ = blur_path(x, 128, 3.0, 19)
    gamma0 = path[:, 0] - (path[:, 1] - path[:, 0])  # ≈ the fully blurred start for fine steps
    with torch.no_grad():
        out = net(x).gather(1, torch.tensor([[0], [3]]))[:, 0] - net(gamma0).gather(1, torch.tensor([[0], [3]]))[:, 0]
    assert torch.allclose(attr.flatten(1).sum(1), out, atol=2e-3)


def test_combined_is_attribution_times_cam():
    from lamfast.cam import GradCAM

    net, x = _ReluNet().eval(), _x(2)
    with GradCAM(net, [net.body[2]]) as cam:
        combined = Combined(GuidedBackprop(net), cam).attribute(x, target=[1, 2])
        maps = cam(x, [1, 2])
    assert torch.allclose(combined, GuidedBackprop(net).attribute(x, target=[1, 2]) * maps[:, None])


class _SqrtAtZero(nn.Module):
    """Finite output; its input gradient is NaN at every pixel (d sqrt(x - x))."""

    def forward(self, x):
        return x.flatten(1).sum(1, keepdim=True) + (x - x).sqrt().sum((1, 2, 3))[:, None]


@pytest.mark.parametrize("method", ["ig", "blurig"])
def test_path_methods_let_nan_gradients_through_like_captum(method):
    # LAM zeroes NaN gradients (the official quirk, with a warning); IG must not hide them.
    x = _x(1)
    if method == "ig":
        ours = IntegratedGradients(_SqrtAtZero()).attribute(x, target=0, n_steps=4)
        theirs = captum_attr.IntegratedGradients(_SqrtAtZero()).attribute(x, target=0, n_steps=4)
        assert torch.isnan(theirs).all()
    else:
        ours = BlurIG(_SqrtAtZero()).attribute(x, target=0, n_steps=4)
    assert torch.isnan(ours).all()


@pytest.mark.parametrize("n", [1, 2, 7, 50, 200])
def test_gauss_legendre_matches_numpy(n):
    np = pytest.importorskip("numpy")
    from lamfast.attr.integrated_gradients import gauss_legendre

    nodes, weights = gauss_legendre(n)
    expected_nodes, expected_weights = np.polynomial.legendre.leggauss(n)
    assert_close(np.array(nodes), expected_nodes, "formula")
    assert_close(np.array(weights), expected_weights, "formula")
