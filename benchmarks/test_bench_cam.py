"""Classifier attribution cost on timm resnet18 (random init), batch 8, 224².

Rows per CAM method: lamfast, pytorch-grad-cam, and the physical minimum
(forward + backward to the target layer, input-only). Targets: lamfast
<= 1.15x the minimum and >= 1.8x faster than pytorch-grad-cam; EigenCAM
<= 1.1x a forward pass; IG within 1.05x of a bare chunked forward/backward
loop and no slower than captum.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from torchvision_shim import import_with_torchvision_shim  # noqa: E402

import lamfast.cam as cams  # noqa: E402
from lamfast.attr import IntegratedGradients  # noqa: E402
from lamfast.modelstate import attribution_state  # noqa: E402

METHODS = ["GradCAM", "GradCAMPlusPlus", "XGradCAM", "EigenCAM", "EigenGradCAM", "LayerCAM", "HiResCAM"]


@pytest.fixture(scope="module")
def resnet():
    timm = import_with_torchvision_shim("timm")
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False).eval()
    x = torch.rand(8, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    return model, x


@pytest.mark.benchmark(group="cam-resnet18-b8")
def test_minimum_forward_backward_to_layer4(benchmark, resnet):
    model, x = resnet
    store = {}
    handle = model.layer4.register_forward_hook(lambda m, i, o: store.__setitem__("a", o.detach().requires_grad_(True)) or store["a"])

    def minimum():
        with attribution_state(model), torch.enable_grad():
            out = model(x)
            torch.autograd.grad(out[:, 0].sum(), store["a"])

    benchmark(minimum)
    handle.remove()


@pytest.mark.benchmark(group="cam-resnet18-b8")
def test_forward_only(benchmark, resnet):
    model, x = resnet

    def forward():
        with torch.no_grad():
            model(x)

    benchmark(forward)


@pytest.mark.benchmark(group="cam-resnet18-b8")
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("impl", ["lamfast", "pytorch-grad-cam"])
def test_cam(benchmark, resnet, method, impl):
    model, x = resnet
    if impl == "lamfast":
        cam = getattr(cams, method)(model, [model.layer4])
        benchmark(cam, x, [0])
        cam.release()
    else:
        pgc = import_with_torchvision_shim("pytorch_grad_cam")
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        cam = getattr(pgc, method)(model, [model.layer4])
        benchmark(cam, x, [ClassifierOutputTarget(0)] * 8)
        cam.activations_and_grads.release()


@pytest.mark.benchmark(group="ig-resnet18-b8")
@pytest.mark.parametrize("impl", ["lamfast", "bare", "captum"])
def test_integrated_gradients(benchmark, resnet, impl):
    model, x = resnet
    x = x[:2]
    steps, chunk = 16, 16
    if impl == "lamfast":
        benchmark.pedantic(IntegratedGradients(model).attribute, args=(x,),
                           kwargs={"target": 0, "n_steps": steps, "internal_batch_size": chunk}, rounds=2)
    elif impl == "captum":
        captum_attr = pytest.importorskip("captum.attr")
        benchmark.pedantic(captum_attr.IntegratedGradients(model).attribute, args=(x,),
                           kwargs={"target": 0, "n_steps": steps, "internal_batch_size": chunk}, rounds=2)
    else:
        alphas = torch.linspace(0, 1, steps)

        def bare():
            with attribution_state(model):
                for s in range(0, steps * 2, chunk):
                    pts = torch.cat([a * x for a in alphas])[s:s + chunk].requires_grad_(True)
                    torch.autograd.grad(model(pts)[:, 0].sum(), pts)

        benchmark.pedantic(bare, rounds=2)
