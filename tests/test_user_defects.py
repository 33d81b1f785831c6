"""Defects a review and a new user found (P12), one test each; each failed before its fix."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import lamfast
from lamfast.cli import build_parser, main


def _png(path: Path, side: int = 24, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (side, side, 4 if mode == "RGBA" else 3), dtype=np.uint8)
    if mode == "RGBA":
        arr[:4, :4, 3] = 0
    Image.fromarray(arr, mode).save(path)
    return path


def _cli(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lamfast", *argv], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


# ---- names --------------------------------------------------------------------------------------


def test_the_lam_package_and_the_lam_function_are_both_reachable():
    import lamfast.lam.windows as W

    assert lamfast.lam.windows is W and callable(W.top_edges)  # "'function' object has no attribute 'windows'"
    from lamfast import lam

    model = lamfast.load_model().model
    x = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(0))
    r = lam(model, x, 8, 8, 16, fold=3)
    assert r.window == (8, 8, 16) and r.di > 0
    assert "window_size" in str(__import__("inspect").signature(lamfast.lam))


def _long_options(parser):
    for action in parser._actions:
        yield action, [o for o in action.option_strings if o.startswith("--")]


def test_every_flag_has_one_spelling_and_its_alias_and_one_destination():
    """timm-style: --window-size is canonical, --window_size its alias; no two flags write one dest."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():
        dests = [a.dest for a in parser._actions if a.dest != "help"]
        assert len(dests) == len(set(dests)), (name, sorted(d for d in dests if dests.count(d) > 1))
        for action, longs in _long_options(parser):
            for option in longs:
                if "-" in option[2:] or "_" in option[2:]:
                    hyphen, underscore = "--" + option[2:].replace("_", "-"), "--" + option[2:].replace("-", "_")
                    assert {hyphen, underscore} <= set(longs), (name, option)
                    assert longs[0] == hyphen, (name, longs)  # the canonical spelling comes first


def test_attention_output_dir_in_either_spelling_is_the_one_written(tmp_path):
    args = build_parser().parse_args(["attention", "img.png", "--method", "sr-window", "--output_dir",
                                      str(tmp_path / "mine")])
    from lamfast.cli.attention import attention_mode

    assert attention_mode(args, args.command_parser) == "sr" and args.output_dir == str(tmp_path / "mine")
    args = build_parser().parse_args(["attention", "--image_path", "x.png", "--arch", "vit_small"])
    assert attention_mode(args, args.command_parser) == "guide" and args.output_dir == "attention_viz"
    args = build_parser().parse_args(["attention", "x.png", "--modelpath", "m.pt"])  # an SR flag, classifier mode
    with pytest.raises(Exception, match="--modelpath belongs to --method sr-window, sr-channel"):
        attention_mode(args, args.command_parser)


def test_lam_takes_window_size_with_a_hyphen(tmp_path):
    assert main(["lam", "--window-size", "8", "--fold", "2", "--no-progress", "--output-dir", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "result.json").read_text())["window_size"] == 8


# ---- errors ---------------------------------------------------------------------------------------


def test_location_is_checked_without_assert(tmp_path):
    """Under python -O an assert is gone: ROW,COL,EXTRA used to pass."""
    img = _png(tmp_path / "a.png")
    done = subprocess.run([sys.executable, "-O", "-m", "lamfast", "attention", str(img), "--method", "sr-window",
                           "--location", "1,2,3"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip() == "lamfast: error: --location takes ROW,COL in LR pixels, got '1,2,3'"


def test_an_empty_exception_message_is_named_by_its_type(tmp_path):
    """``str(exc).splitlines()[0]`` raised IndexError on an empty message."""
    from lamfast.errors import first_line

    assert first_line(RuntimeError()) == "RuntimeError" and first_line(KeyError("k")) == "k"
    arch = tmp_path / "net.py"
    arch.write_text("import torch\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                    "        self.conv = torch.nn.Conv2d(3, 12, 3, padding=1)\n    def forward(self, x):\n"
                    "        if x.requires_grad:\n            raise RuntimeError()\n"
                    "        return torch.nn.functional.pixel_shuffle(self.conv(x), 2)\n")
    ns: dict = {}
    exec(arch.read_text(), ns)  # noqa: S102
    torch.save(ns["Net"]().state_dict(), tmp_path / "net.pt")
    img = _png(tmp_path / "a.png", 16)
    done = _cli("erf", str(img), "--lr-input", "--model", f"{arch}:Net:{tmp_path / 'net.pt'}", "-o",
                str(tmp_path / "erf"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith("RuntimeError")


def test_out_of_memory_in_a_batched_backward_is_not_swallowed(monkeypatch):
    """``except RuntimeError`` around the batched backward also caught OutOfMemoryError."""
    from lamfast import path as path_mod

    real = torch.autograd.grad

    def grad(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(path_mod.torch.autograd, "grad", grad)
    model = lamfast.load_model().model
    x = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(0))
    with pytest.raises(torch.OutOfMemoryError):
        lamfast.lam_windows(model, x, [(0, 0, 16), (40, 40, 16)], fold=2, window_batch=2, crop="off")


def test_debug_env_shows_the_traceback_and_other_errors_say_their_type(tmp_path):
    quiet = _cli("lam", "--sigma", "0", "--no-progress", "--output-dir", str(tmp_path))
    loud = _cli("lam", "--sigma", "0", "--no-progress", "--output-dir", str(tmp_path), env={"LAMFAST_DEBUG": "1"})
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    assert loud.returncode != 0 and "Traceback" in loud.stderr and "with sigma 0 every point" in loud.stderr


def test_library_errors_name_their_argument_and_the_cli_its_flag(tmp_path):
    from lamfast.errors import LamfastError

    for cls in (lamfast.LAMError, __import__("lamfast.cam", fromlist=["CAMError"]).CAMError,
                __import__("lamfast.imageio", fromlist=["ImageError"]).ImageError):
        assert issubclass(cls, LamfastError)
    with pytest.raises(LamfastError) as info:
        lamfast.load_model(tmp_path / "missing.pt", unsafe_pickle=False)
    torch.save(nn.Conv2d(3, 3, 1), tmp_path / "whole.pth")
    with pytest.raises(LamfastError) as info:
        lamfast.load_model(tmp_path / "whole.pth")
    assert info.value.param == "unsafe_pickle" and "allow it with unsafe_pickle" in str(info.value)
    done = _cli("lam", "--modelpath", str(tmp_path / "whole.pth"), "--output-dir", str(tmp_path / "o"))
    assert done.stderr.strip().endswith("allow it with --unsafe-pickle only if you trust it"), done.stderr


# ---- LAM inputs ---------------------------------------------------------------------------------


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


def test_a_failed_lam_run_leaves_no_earlier_output_behind(tmp_path):
    out = tmp_path / "o"
    assert main(["lam", "--kde", "--fold", "2", "--no-progress", "--output-dir", str(out)]) == 0
    assert (out / "result.json").exists() and (out / "blend_kde.png").exists()
    assert main(["lam", "--h", "4000", "--fold", "2", "--no-progress", "--output-dir", str(out)]) == 1
    assert not (out / "result.json").exists() and not (out / "blend_kde.png").exists()


def test_nan_warning_says_what_it_means_and_what_to_do():
    from lamfast.lam import LAMNaNWarning

    from lamfast.lam.crop import CropInfo
    from lamfast.lam.result import make_result

    attribution = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_result(attribution, 3, sr=torch.rand(3, 16, 16), scale=2, window=(0, 0, 8),
                    params=lamfast.LAMParams(fold=10), batch_size=10, crop=CropInfo(None, None, "test"), timings={})
    text = " ".join(str(w.message) for w in caught if issubclass(w.category, LAMNaNWarning))
    assert "these are the official numbers" in text and "mode='robust'" in text and "when both give the same DI" in text


# ---- images ---------------------------------------------------------------------------------------


def test_rgba_note_tells_what_happened(tmp_path):
    from lamfast.imageio import read_rgb

    img, notes = read_rgb(_png(tmp_path / "a.png", mode="RGBA"))
    stored = np.asarray(Image.open(tmp_path / "a.png"))[:4, :4, :3]
    assert np.array_equal(np.asarray(img)[:4, :4], stored)  # colours under alpha 0 kept, not black
    assert any("colours under transparent pixels kept as stored" in n for n in notes)
    assert not any("black" in n for n in notes)


def test_a_16_bit_colour_png_is_not_cut_silently(tmp_path):
    cv2 = pytest.importorskip("cv2", reason="OpenCV (test extra) writes 16-bit colour PNGs")
    from lamfast.imageio import read_rgb

    arr = (np.random.default_rng(0).random((8, 8, 3)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), arr)
    img, notes = read_rgb(tmp_path / "deep.png")
    assert notes == ["16-bit colour image read as 8 bits per channel (the 8 high bits)"]
    assert np.array_equal(np.asarray(img), (arr[..., ::-1] >> 8).astype(np.uint8))


def test_sizes_are_h_by_w_everywhere(tmp_path):
    from lamfast.request import prepare_input

    wide = Image.fromarray(np.zeros((10, 30, 3), dtype=np.uint8))
    wide.save(tmp_path / "w.png")
    sr = prepare_input(None, tmp_path / "w.png", scale=4)
    assert sr.notes == ["cropped the HR image from 10x30 to 8x28 (HxW, a multiple of the scale 4)"]
    Image.fromarray(np.zeros((2, 30, 3), dtype=np.uint8)).save(tmp_path / "thin.png")
    with pytest.raises(lamfast.LAMError.__mro__[1], match=r"image 2x30 \(HxW\) is smaller than the scale 4"):
        prepare_input(None, tmp_path / "thin.png", scale=4)


# ---- figures --------------------------------------------------------------------------------------


def test_attention_grid_shows_every_layer_or_says_it_does_not():
    from lamfast.attention import attention_grid
    from lamfast.attention.sr import SRAttention, WindowLayer

    layers = [WindowLayer(f"layers.{i}", 4, 0, torch.rand(2, 8, 8)) for i in range(24)]
    res = SRAttention(location=(2, 2), window=layers, channel=[])
    lr = Image.new("RGB", (8, 8))
    full = attention_grid(res, lr, zoom=1)
    assert full.height == 24 * (8 + 14 + 2)  # all 24 rows (before: 12, silently)
    assert attention_grid(res, lr, zoom=1, max_layers=12).height == 12 * (8 + 14 + 2) + 14  # with its footer


def test_erf_figure_is_log_scaled_as_replknet_shows_it():
    from lamfast.erf import ERFResult, erf_figure
    from lamfast.viz import seismic

    m = torch.zeros(4, 4, dtype=torch.float64)
    m[1, 1], m[2, 2] = 99.0, 9.0  # log10(x + 1): 2 and 1, so 1 and 0.5 of the peak (linear: 1 and 0.09)
    fig = np.asarray(erf_figure({"m": ERFResult(m)}, panel=4))
    want = seismic(torch.tensor([[1.0, 0.5]]))[0]
    assert np.array_equal(fig[18 + 1, 1], want[0]) and np.array_equal(fig[18 + 2, 2], want[1])
