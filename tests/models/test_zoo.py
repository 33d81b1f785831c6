"""LAM_Demo's model zoo: every checkpoint layout loads with no flags.

Random weights in the zoo's exact key layout (``tests/data/zoo/*.json``,
see its README). lamfast's CARN, SAN and RNAN must have the manifest's
state_dict exactly; RCAN and RRDBNet are detected by spandrel. LAM on each
agrees with the official per-step loop on the official path.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import lamfast
from lamfast.models import load_model

from conftest import REPO, assert_close, optional_module

ZOO = REPO / "tests" / "data" / "zoo"
# manifest -> (architecture lamfast reports, the zoo's input range inside the model)
EXPECTED = {
    "carn": ("carn", 1.0),
    "edsr": ("edsr", 1.0),
    "rnan": ("rnan", 1.0),
    "san": ("san", 1.0),
    "rcan": ("spandrel:RCAN", 255.0),
    "rrdbnet": ("spandrel:ESRGAN", None),
}
DIV2K_MEAN = torch.tensor([0.4488, 0.4371, 0.4040])


def manifest(name: str) -> dict:
    return json.loads((ZOO / f"{name}.json").read_text())


def random_state_dict(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights of the manifest's keys and shapes; mean shifts as the zoo sets them."""
    gen = torch.Generator().manual_seed(seed)
    scale = EXPECTED[name][1] or 1.0
    sd = {}
    for key, shape in manifest(name)["keys"].items():
        if "mean" in key:  # sub_mean / add_mean (and CARN's shifter): identity weight, ±mean bias
            sign = -1.0 if key.startswith("sub_mean") else 1.0
            sd[key] = torch.eye(3).view(3, 3, 1, 1) if key.endswith("weight") else sign * scale * DIV2K_MEAN
        elif key.endswith("gamma"):
            sd[key] = torch.full(shape, 0.1)
        elif len(shape) > 1:
            fan = 1
            for s in shape[1:]:
                fan *= s
            sd[key] = torch.randn(shape, generator=gen) * (0.5 / fan ** 0.5)
        else:
            sd[key] = torch.randn(shape, generator=gen) * 0.01
    return sd


def official_loop(model, path, deriv, h, w, d):
    grads = []
    for j in range(path.shape[0]):
        x = path[j][None].clone().requires_grad_(True)
        y = model(x)
        hg = (y[:, :, :-1, :] - y[:, :, 1:, :]) ** 2
        wg = (y[:, :, :, :-1] - y[:, :, :, 1:]) ** 2
        g = (hg[:, :, :, :-1] + wg[:, :, :-1, :]).sqrt()
        (grad,) = torch.autograd.grad(g[:, :, h:h + d, w:w + d].sum(), x)
        grads.append(torch.nan_to_num(grad[0], nan=0.0) * deriv[j])
    return torch.stack(grads).mean(0)


@pytest.fixture(scope="module", autouse=True)
def _spandrel():
    optional_module("spandrel")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_zoo_checkpoint_loads_with_no_flags(tmp_path, name):
    path = tmp_path / manifest(name)["checkpoint"]
    sd = random_state_dict(name)
    # BasicSR's official RRDBNet file nests its weights under 'params', as the zoo's copy does
    torch.save({"params": sd} if name == "rrdbnet" else sd, path)
    loaded = load_model(path)
    assert loaded.arch == EXPECTED[name][0]
    assert any("scale" in n and ("x4" in n or "scale=4" in n) for n in loaded.notes), loaded.notes
    if not loaded.arch.startswith("spandrel:"):
        got = {k: list(v.shape) for k, v in loaded.model.state_dict().items()}
        assert got == manifest(name)["keys"]  # the zoo's layout exactly: nothing missing, nothing extra
    with torch.no_grad():
        y = loaded.model(torch.rand(1, 3, 12, 12))
    assert y.shape == (1, 3, 48, 48) and torch.isfinite(y).all()


def _small(name: str) -> torch.nn.Module:
    """The architecture at a test size (the full zoo sizes are covered above)."""
    from lamfast.models import CARN, RNAN, SAN

    model = {"carn": lambda: CARN(scale=4), "rnan": lambda: RNAN(n_resgroups=3),
             "san": lambda: SAN(n_resgroups=2, n_resblocks=2)}[name]()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for key, p in model.state_dict().items():
            if "mean" not in key and p.is_floating_point():
                p.copy_(torch.randn(p.shape, generator=gen) * (0.5 / max(1, p[0].numel()) ** 0.5 if p.dim() > 1
                                                                 else 0.01))
    return model.eval()


@pytest.mark.parametrize("name", ["carn", "rnan", "san"])
def test_lam_on_zoo_architecture_equals_the_official_loop(name):
    from lamfast.lam.official_path import official_blur_path

    pytest.importorskip("cv2")
    model = _small(name)
    for p in model.parameters():
        p.requires_grad_(False)
    lr = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2))
    h, w, d, fold = 20, 24, 12, 4
    p, dv = official_blur_path(lr, fold, 1.2, 9)
    want = official_loop(model, p, dv, h, w, d)
    res = lamfast.lam(model, lr, h, w, d, fold=fold, mode="official")
    # the same gradients; lamfast sums the steps in float32 in another order than numpy's mean
    assert_close(res.attribution, want, "zoo_loop")


def test_san_covariance_and_square_root():
    """SAN's pooling (the zoo's x I_hat x^T) is the centred covariance, its
    Newton-Schulz root squares back to the matrix, and both hand-written
    backwards match numerical derivatives."""
    from lamfast.models.san import CovPool, SqrtmNS

    x = torch.rand(2, 5, 4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    flat = x.reshape(2, 5, -1)
    centred = flat - flat.mean(2, keepdim=True)
    torch.testing.assert_close(CovPool.apply(x), centred.bmm(centred.transpose(1, 2)) / 12)
    spd = CovPool.apply(x) + 0.5 * torch.eye(5, dtype=torch.float64)
    root = SqrtmNS.apply(spd, 12)
    torch.testing.assert_close(root.bmm(root), spd, rtol=1e-6, atol=1e-8)
    assert torch.autograd.gradcheck(lambda t: CovPool.apply(t), (x.clone().requires_grad_(True),))
    eye = torch.eye(5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: SqrtmNS.apply(t @ t.transpose(1, 2) + eye, 5),
                                    (torch.rand(2, 5, 5, dtype=torch.float64).requires_grad_(True),))


def test_rnan_refuses_odd_sizes_in_one_line(tmp_path):
    path = tmp_path / "rnan.pt"
    torch.save(random_state_dict("rnan"), path)
    model = load_model(path).model
    with pytest.raises(lamfast.LAMError) as info:
        lamfast.lam(model, torch.rand(3, 15, 16), 4, 4, 8, fold=2)
    assert "\n" not in str(info.value)
