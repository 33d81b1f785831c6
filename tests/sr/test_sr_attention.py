"""Window and channel attention inside SR transformers (spandrel's SwinIR and HAT, random init)."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from lamfast.attention import SRAttentionError, attention_grid, attention_overlays, sr_attention

from conftest import optional_module


def _swinir():
    optional_module("spandrel")
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    return SwinIR(upscale=2, img_size=16, window_size=4, depths=[2, 2], num_heads=[2, 2], embed_dim=16,
                  mlp_ratio=2, upsampler="pixelshuffle").eval()


def _hat():
    optional_module("spandrel")
    from spandrel.architectures.HAT import HAT

    torch.manual_seed(0)
    return HAT(upscale=2, img_size=16, window_size=4, depths=[2], num_heads=[2], embed_dim=16, mlp_ratio=2,
               upsampler="pixelshuffle", compress_ratio=2, squeeze_factor=4, overlap_ratio=0.5).eval()


def test_window_attention_rows_are_the_ones_the_model_used():
    """Each head's map sums to 1 over exactly the query's (shifted) window, which holds the query."""
    model = _swinir()
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1))
    res = sr_attention(model, image, location=(5, 9))
    assert len(res.window) == 4  # 2 stages x 2 blocks
    shifts = [layer.shift for layer in res.window]
    assert shifts == [0, 2, 0, 2]
    for layer in res.window:
        assert layer.maps.shape == (2, 16, 16)
        torch.testing.assert_close(layer.maps.sum(dim=(1, 2)), torch.ones(2))
        support = layer.maps[0] > 0
        assert int(support.sum()) <= 16 and bool(support[5, 9])
        if layer.shift == 0:  # the plain 4x4 window of (5, 9): rows 4..7, columns 8..11
            want = torch.zeros(16, 16, dtype=torch.bool)
            want[4:8, 8:12] = True
            assert torch.equal(support, want)
        else:  # shifted by 2: (5, 9) sits at (3, 7) of the rolled grid, window (0, 1); rolled back by 2
            want = torch.zeros(16, 16, dtype=torch.bool)
            rows = [(0 * 4 + i + 2) % 16 for i in range(4)]
            cols = [(1 * 4 + i + 2) % 16 for i in range(4)]
            want[torch.tensor(rows)[:, None], torch.tensor(cols)[None, :]] = True
            assert bool((support & ~want).sum() == 0)  # inside the shifted window (the mask may cut it)


def test_window_attention_reproduces_the_block_output():
    """Attention row x values, through the projection, equals the attention module's output for that token."""
    model = _swinir()
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2))
    block = model.layers[0].residual_group.blocks[0]
    seen = {}
    block.attn.register_forward_hook(lambda m, i, o: seen.update(x=i[0].detach(), out=o.detach()))
    res = sr_attention(model, image, location=(6, 3))
    layer = res.window[0]
    ws = 4
    x = seen["x"]  # [nW, N, C], windows in row-major order
    win = (6 // ws) * (16 // ws) + 3 // ws
    token = (6 % ws) * ws + 3 % ws
    attn = block.attn
    B_, N, C = x.shape
    v = attn.qkv(x).reshape(B_, N, 3, attn.num_heads, C // attn.num_heads).permute(2, 0, 3, 1, 4)[2][win]
    rows = torch.stack([layer.maps[h, (6 // ws) * ws:(6 // ws + 1) * ws, 0:ws].reshape(-1) for h in range(2)])
    mixed = torch.einsum("hn,hnd->hd", rows, v).reshape(-1)
    torch.testing.assert_close(attn.proj(mixed), seen["out"][win, token], rtol=1e-5, atol=1e-6)


def test_hat_window_and_channel_attention_and_figures():
    from PIL import Image

    model = _hat()
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(3))
    res = sr_attention(model, image, window=(12, 16, 8), scale=2)
    assert res.location == (8, 10)
    assert len(res.window) == 2 and all(layer.maps.shape == (2, 16, 16) for layer in res.window)
    assert len(res.channel) == 2  # one CAB per HAB block
    for _, gate in res.channel:
        assert gate.shape == (16,) and bool(((gate > 0) & (gate < 1)).all())
    lr = Image.fromarray((image.permute(1, 2, 0).numpy() * 255).astype("uint8"))
    grid = attention_grid(res, lr, zoom=2)
    assert grid.size == (3 * (32 + 2), 2 * (32 + 14 + 2))  # 2 heads + fused, 2 layers
    assert attention_overlays(res, lr, zoom=2).size == (2 * (32 + 2), 32)


def test_models_without_attention_and_bad_locations_are_one_line():
    from lamfast.models import bundled_model

    with pytest.raises(SRAttentionError, match="no window attention"):
        sr_attention(bundled_model().model, torch.rand(3, 8, 8))
    with pytest.raises(SRAttentionError, match="outside"):
        sr_attention(_swinir(), torch.rand(3, 16, 16), location=(16, 0))


def test_cli_sr_window_and_channel(tmp_path, capsys):
    import json

    import numpy as np
    from PIL import Image

    from lamfast.cli import main

    model = _hat()
    ckpt = tmp_path / "hat.pth"
    torch.save(model.state_dict(), ckpt)
    img = tmp_path / "lr.png"
    Image.fromarray((np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)).save(img)
    out = tmp_path / "att"
    assert main(["attention", str(img), "--method", "sr-window", "--modelpath", str(ckpt), "--lr-input",
                 "--location", "3,4", "--output-dir", str(out)]) == 0
    info = json.loads((out / "attention.json").read_text())
    assert info["location"] == [3, 4] and len(info["layers"]) == 2
    assert (out / "attention_grid.png").is_file() and (out / "attention_overlays.png").is_file()
    assert main(["attention", str(img), "--method", "sr-channel", "--modelpath", str(ckpt), "--lr-input",
                 "--output-dir", str(out)]) == 0
    assert len(json.loads((out / "attention.json").read_text())["layers"]) == 2
    capsys.readouterr()
    assert main(["attention", str(img), "--method", "sr-window", "--lr-input", "--output-dir",
                 str(tmp_path / "none")]) != 0  # the bundled TinySR has no attention
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("lamfast: error")]
    assert len(err) == 1 and "no window attention" in err[0]


@pytest.mark.parametrize("named", [False, True], ids=["detected", "arch-named"])
def test_cli_grid_equals_the_python_grid(tmp_path, named):
    """The README's claim: a saved SwinIR, detected by spandrel or named as ``spandrel.architectures.SwinIR:SwinIR``
    with its keyword arguments, gives the Python call's ``attention_grid.png`` byte for byte."""
    import json

    import numpy as np
    from PIL import Image

    from lamfast.cli import main

    model = _swinir()
    ckpt = tmp_path / "swinir.pt"
    torch.save(model.state_dict(), ckpt)
    lr = Image.fromarray((np.random.default_rng(2).random((16, 16, 3)) * 255).astype(np.uint8))
    lr.save(tmp_path / "lr.png")
    tensor = torch.from_numpy(np.asarray(lr).copy()).permute(2, 0, 1).float() / 255
    attention_grid(sr_attention(model, tensor, location=(6, 9)), lr).save(tmp_path / "python.png")
    kwargs = dict(upscale=2, img_size=16, window_size=4, depths=[2, 2], num_heads=[2, 2], embed_dim=16, mlp_ratio=2,
                  upsampler="pixelshuffle")
    arch = ["--arch", "spandrel.architectures.SwinIR:SwinIR", "--arch-kwargs", json.dumps(kwargs)] if named else []
    assert main(["attention", str(tmp_path / "lr.png"), "--lr-input", "--method", "sr-window", "--modelpath",
                 str(ckpt), *arch, "--location", "6,9", "--output-dir", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "attention_grid.png").read_bytes() == (tmp_path / "python.png").read_bytes()


@pytest.mark.parametrize("nesting", ["bare", "params", "state_dict"])
def test_the_guides_flags(tmp_path, capsys, nesting):
    """--image_path --model_path --arch --patch_size --image_size --output_dir, as the guide runs them."""
    import numpy as np
    from PIL import Image

    from lamfast.cli import main

    timm = optional_module("timm")
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64)
    sd = vit.state_dict()
    ckpt = tmp_path / "vit.pth"
    torch.save(sd if nesting == "bare" else {nesting: sd}, ckpt)
    img = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((80, 96, 3)) * 255).astype(np.uint8)).save(img)
    out = tmp_path / "viz"
    assert main(["attention", "--image_path", str(img), "--model_path", str(ckpt), "--arch", "vit_tiny",
                 "--patch_size", "16", "--image_size", "64", "--output_dir", str(out)]) == 0
    for name in ("gradcam_overlay.png", "patch_attention_overlay.png"):
        assert Image.open(out / name).size == (96, 80)  # over the image as read
    assert Image.open(out / "patch_grid.png").size == (64, 64)  # 4x4 patches of 16 px
    assert "patch grid" in capsys.readouterr().out


def test_attention_grid_shows_every_layer_or_says_it_does_not():
    from lamfast.attention import attention_grid
    from lamfast.attention.sr import SRAttention, WindowLayer

    layers = [WindowLayer(f"layers.{i}", 4, 0, torch.rand(2, 8, 8)) for i in range(24)]
    res = SRAttention(location=(2, 2), window=layers, channel=[])
    lr = Image.new("RGB", (8, 8))
    full = attention_grid(res, lr, zoom=1)
    assert full.height == 24 * (8 + 14 + 2)  # all 24 rows (before: 12, silently)
    assert attention_grid(res, lr, zoom=1, max_layers=12).height == 12 * (8 + 14 + 2) + 14  # with its footer
