"""Effective receptive fields (RepLKNet's definition) for SR networks."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import lamfast
from lamfast.cli import main
from lamfast.erf import area_ratios, erf, erf_figure


def _net(depth: int = 2, relu: bool = True, positive: bool = False, dtype=torch.float64) -> torch.nn.Module:
    torch.manual_seed(depth)
    layers: list[torch.nn.Module] = []
    ch = 3
    for i in range(depth):
        out = 12 if i == depth - 1 else 8
        conv = torch.nn.Conv2d(ch, out, 3, padding=1)
        if positive:
            with torch.no_grad():
                conv.weight.uniform_(0.05, 0.1)
                conv.bias.zero_()
        layers.append(conv)
        if relu and i < depth - 1:
            layers.append(torch.nn.ReLU())
        ch = out
    layers.append(torch.nn.PixelShuffle(2))
    return torch.nn.Sequential(*layers).to(dtype).eval()


def test_erf_equals_plain_autograd_per_image():
    model = _net(3)
    images = torch.rand(5, 3, 17, 19, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    want = torch.zeros(17, 19, dtype=torch.float64)
    for img in images:
        x = img[None].clone().requires_grad_(True)
        y = model(x)
        (g,) = torch.autograd.grad(torch.relu(y[0, :, y.shape[2] // 2, y.shape[3] // 2]).sum(), x)
        want += torch.relu(g[0]).sum(0)
    want /= len(images)
    for batch in (1, 2, 5):
        got = erf(model, images, batch_size=batch)
        torch.testing.assert_close(got.map, want, rtol=1e-12, atol=1e-15)
        assert got.images == 5
    assert all(p.requires_grad for p in model.parameters())  # state restored


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_a_stack_of_3x3_convs_has_exactly_its_receptive_field(depth):
    """Linear 3x3 convs with positive weights: the gradient is > 0 exactly on the (2n+1)^2 square."""
    size = 21
    model = _net(depth, relu=False, positive=True)
    images = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    res = erf(model, images)
    c = size // 2
    support = (res.map > 0).numpy()
    want = np.zeros((size, size), dtype=bool)
    want[c - depth:c + depth + 1, c - depth:c + depth + 1] = True
    assert np.array_equal(support, want)
    side, ratio = res.ratios[0.99]
    assert side <= 2 * depth + 1 and ratio == pytest.approx(side * side / size ** 2)


def test_area_ratios_follow_replknet():
    m = torch.zeros(11, 11, dtype=torch.float64)
    m[5, 5] = 100.0
    assert all(v[0] == 3 and v[1] == pytest.approx(9 / 121) for v in area_ratios(m).values())  # RepLKNet starts at 3x3
    flat = torch.ones(11, 11, dtype=torch.float64)
    r = area_ratios(flat)
    assert r[0.2][0] == 5 and r[0.2][1] == pytest.approx(25 / 121) and r[0.99] == (None, None)  # 9x9 holds 81/121 < 0.99: no square fits


def test_erf_refuses_what_it_cannot_average():
    model = _net(1)
    with pytest.raises(ValueError, match="one size"):
        erf(model, [torch.rand(3, 8, 8, dtype=torch.float64), torch.rand(3, 9, 8, dtype=torch.float64)])
    with pytest.raises(ValueError, match="at least one"):
        erf(model, [])
    classifier = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    with pytest.raises(ValueError, match=r"\[B,C,H,W\] map"):
        erf(classifier, torch.rand(1, 3, 8, 8))


def test_figure_has_one_panel_per_model_and_a_colour_bar():
    a = lamfast.erf(_net(1, dtype=torch.float32), torch.rand(2, 3, 16, 16))
    b = lamfast.erf(_net(3, dtype=torch.float32), torch.rand(2, 3, 16, 16))
    img = erf_figure({"a": a, "b": b}, panel=64)
    assert img.size == (2 * (64 + 8) + 14 + 24, 64 + 18)


def test_cli_two_models(tmp_path, capsys):
    from lamfast.models import TinySR

    torch.manual_seed(0)
    other = tmp_path / "tiny.pt"
    torch.save(TinySR(scale=4, width=8, depth=1).state_dict(), other)
    img = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((96, 96, 3)) * 255).astype(np.uint8)).save(img)
    out = tmp_path / "erf"
    assert main(["erf", str(img), "--model", "bundled", "--model", f"tinysr:{other}", "-o", str(out)]) == 0
    summary = json.loads((out / "erf.json").read_text())
    assert set(summary["models"]) == {"bundled", "tiny"}  # what the models are called: NAME=, else the file stem
    for m in summary["models"].values():
        assert m["size"] == [24, 24] and set(m["area_ratio"]) == {"0.2", "0.3", "0.5", "0.99"}
    assert Image.open(out / "erf.png").size[0] > 2 * 200
    assert "area ratio" in capsys.readouterr().out
    assert main(["erf", str(img), "--size", "500", "-o", str(tmp_path / "x")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--size 500" in err[0] and not (tmp_path / "x").exists()


def test_erf_figure_is_log_scaled_as_replknet_shows_it():
    from lamfast.erf import ERFResult, erf_figure
    from lamfast.viz import seismic

    m = torch.zeros(4, 4, dtype=torch.float64)
    m[1, 1], m[2, 2] = 99.0, 9.0  # log10(x + 1): 2 and 1, so 1 and 0.5 of the peak (linear: 1 and 0.09)
    fig = np.asarray(erf_figure({"m": ERFResult(m)}, panel=4))
    want = seismic(torch.tensor([[1.0, 0.5]]))[0]
    assert np.array_equal(fig[18 + 1, 1], want[0]) and np.array_equal(fig[18 + 2, 2], want[1])
