"""Model loading: registry, checkpoint fix-ups, safe loading, spandrel detection."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import lamfast
from lamfast.models import EDSR, CheckpointError, RangeAdapter, TinySR, load_model
from lamfast.models.registry import list_architectures

from conftest import optional_module


def _tiny():
    torch.manual_seed(0)
    return TinySR(scale=2, width=8, depth=2)


def _same_output(a: nn.Module, b: nn.Module):
    x = torch.rand(1, 3, 6, 7, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return torch.equal(a(x), b(x))


@pytest.mark.parametrize(
    "wrap,expected_notes",
    [
        (lambda sd: sd, []),
        (lambda sd: {"params_ema": sd, "params": {k: v * 0 for k, v in sd.items()}}, ["params_ema"]),
        (lambda sd: {"params": sd}, ["params"]),
        (lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, ["state_dict", "module."]),
        (lambda sd: {"model_state_dict": sd, "optimizer": {}}, ["model_state_dict"]),
        (lambda sd: {"model": sd}, ["model"]),
        (lambda sd: {"generator": {f"_orig_mod.{k}": v for k, v in sd.items()}}, ["generator", "_orig_mod."]),
    ],
)
def test_checkpoint_fixups(tmp_path, wrap, expected_notes):
    model = _tiny()
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(model.state_dict()), path)
    loaded = load_model(path, arch="tinysr")
    assert _same_output(loaded.model, model)
    notes = " ".join(loaded.notes)
    for fragment in expected_notes:
        assert fragment in notes


def test_autodetects_registered_architecture(tmp_path):
    model = _tiny()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.arch == "tinysr" and "detected" in loaded.notes[0]
    assert _same_output(loaded.model, model)


def test_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.torch", reason="safetensors (test extra) reads .safetensors")
    model = _tiny()
    st.save_file(model.state_dict(), str(tmp_path / "m.safetensors"))
    assert _same_output(load_model(tmp_path / "m.safetensors", arch="tinysr").model, model)


def test_full_pickle_needs_explicit_flag(tmp_path):
    model = _tiny()
    torch.save(model, tmp_path / "whole.pth")
    with pytest.raises(CheckpointError, match="with unsafe_pickle only"):
        load_model(tmp_path / "whole.pth")
    loaded = load_model(tmp_path / "whole.pth", unsafe_pickle=True)
    assert _same_output(loaded.model, model)
    assert any("pickle" in n for n in loaded.notes)


def test_mismatched_keys_are_listed(tmp_path):
    sd = _tiny().state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["tail.bias"]
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"missing keys: tail\.bias.*unexpected keys: extra\.weight"):
        load_model(tmp_path / "bad.pth", arch="tinysr")


def test_wrong_architecture(tmp_path):
    torch.save(_tiny().state_dict(), tmp_path / "t.pth")
    with pytest.raises(CheckpointError, match="does not fit architecture 'edsr'"):
        load_model(tmp_path / "t.pth", arch="edsr")
    with pytest.raises(CheckpointError, match="unknown architecture"):
        load_model(tmp_path / "t.pth", arch="nosuchnet")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken zip"])
def test_corrupt_files(tmp_path, content):
    (tmp_path / "c.pth").write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_model(tmp_path / "c.pth")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.pth")


def test_edsr_official_layout_and_rgb_range(tmp_path):
    torch.manual_seed(0)
    edsr = EDSR(n_resblocks=2, n_feats=8, scale=2, rgb_range=255)
    sd = edsr.state_dict()
    assert {"sub_mean.weight", "head.0.weight", "body.0.body.0.weight", "body.2.weight", "tail.0.0.weight",
            "tail.1.weight", "add_mean.bias"} <= set(sd)
    torch.save(sd, tmp_path / "edsr.pt")
    loaded = load_model(tmp_path / "edsr.pt")
    assert loaded.arch == "edsr"
    assert isinstance(loaded.model, RangeAdapter) and loaded.model.rgb_range == 255
    assert any("rgb_range 255" in n for n in loaded.notes)
    x = torch.rand(1, 3, 5, 6)
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), edsr(x * 255) / 255, atol=1e-5)
    explicit = load_model(tmp_path / "edsr.pt", rgb_range=1.0)
    assert not isinstance(explicit.model, RangeAdapter)


def test_edsr_x3_and_x4_sizes(tmp_path):
    for scale in (3, 4):
        torch.save(EDSR(n_resblocks=1, n_feats=8, scale=scale).state_dict(), tmp_path / "e.pt")
        m = load_model(tmp_path / "e.pt", arch="edsr").model
        with torch.no_grad():
            assert m(torch.rand(1, 3, 4, 4)).shape == (1, 3, 4 * scale, 4 * scale)


def test_register_model_decorator(tmp_path):
    @lamfast.register_model("unit-test-net")
    class UnitTestNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 12, 1)

        def forward(self, x):
            return nn.functional.pixel_shuffle(self.conv(x), 2)

    assert "unit-test-net" in list_architectures()
    net = UnitTestNet()
    torch.save({"params": net.state_dict()}, tmp_path / "u.pth")
    loaded = load_model(tmp_path / "u.pth", arch="UNIT-TEST-NET")
    assert _same_output(loaded.model, net)


def test_spandrel_detection(tmp_path):
    optional_module("spandrel")
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.RCAN import RCAN

    torch.manual_seed(0)
    for net, scale, wrap in ((ESRGAN(num_filters=8, num_blocks=1, scale=4), 4, lambda sd: sd),
                             (RCAN(scale=2, n_resgroups=1, n_resblocks=1, n_feats=8, reduction=4), 2,
                              lambda sd: {"params": sd})):
        torch.save(wrap(net.state_dict()), tmp_path / "s.pth")
        loaded = load_model(tmp_path / "s.pth")
        assert loaded.arch.startswith("spandrel:")
        x = torch.rand(1, 3, 8, 8)
        with torch.no_grad():
            out = loaded.model(x)
        assert out.shape == (1, 3, 8 * scale, 8 * scale)
        r = lamfast.lam(loaded.model, x[0], 0, 0, 8, fold=3)
        assert r.saliency.max() == 1


def test_import_lamfast_does_not_import_optional_packages():
    import subprocess
    import sys

    code = "import sys, lamfast; print(sorted(m for m in ('torchvision', 'spandrel', 'timm', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
