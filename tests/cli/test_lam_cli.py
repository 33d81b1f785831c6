"""``lamfast lam`` end to end, and its bad-input catalog (one line, non-zero exit)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import lamfast
from lamfast.cli import main
from lamfast.models import data_path

from cli_runs import random_png


PNGS = {"window_position.png", "sr.png", "saliency_abs.png", "blend_abs.png", "grid.png"}


def assert_titled_grid(out, names: list[str]) -> None:
    """grid.png is the panels side by side, pixel for pixel, under a header of text (caption with the DI,
    panel titles) and beside a colour bar: dark text pixels above, the bar's reds at the right."""
    panels = [np.asarray(Image.open(out / f"{n}.png").convert("RGB")) for n in names]
    h, w = panels[0].shape[:2]
    grid = np.asarray(Image.open(out / "grid.png").convert("RGB"))
    top = grid.shape[0] - h
    assert top >= 30 and grid.shape[1] > w * len(names)
    assert np.array_equal(grid[top:, :w * len(names)], np.concatenate(panels, axis=1))
    header = grid[:top, :w * len(names)]
    assert (header.max(axis=2) < 80).sum() > 200  # the caption and titles
    bar = grid[top:, w * len(names):]
    assert ((bar[..., 0] > 100) & (bar[..., 1] < 60)).sum() > 100  # the colour bar's strong reds


def test_demo_command_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "lamfast", "lam", "--kde", "--output_dir", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("DI ")
    assert {p.name for p in out.iterdir()} == PNGS | {"blend_kde.png", "attribution.npy", "saliency.npy", "result.json"}
    result = json.loads((out / "result.json").read_text())
    assert result["model"]["arch"] == "tinysr" and result["scale"] == 4
    assert (result["h"], result["w"], result["window_size"], result["fold"]) == (150, 110, 16, 50)
    assert 0 < result["di"] < 100 and f"DI {result['di']:.4f}" in proc.stdout
    assert_titled_grid(out, ["window_position", "saliency_abs", "blend_abs", "blend_kde", "sr"])
    assert np.asarray(Image.open(out / "saliency_abs.png")).std() > 0  # not a blank map


def test_the_raw_maps_are_written_and_named(tmp_path):
    """attribution.npy and saliency.npy are the library's result itself, and result.json names them."""
    from lamfast.request import prepare_input

    out = tmp_path / "o"
    assert main(["lam", "--fold", "6", "--no-progress", "-o", str(out)]) == 0
    model = lamfast.load_model()
    want = lamfast.lam(model, prepare_input(model, "bundled").tensor(), 150, 110, fold=6)
    attribution, saliency = np.load(out / "attribution.npy"), np.load(out / "saliency.npy")
    assert attribution.dtype == np.float32 and np.array_equal(attribution, want.attribution.numpy())
    assert np.array_equal(saliency, want.saliency.numpy())
    result = json.loads((out / "result.json").read_text())
    assert result["maps"]["attribution"]["file"] == "attribution.npy"
    assert result["maps"]["attribution"]["shape"] == [3, 64, 64] and result["maps"]["saliency"]["shape"] == [64, 64]
    assert {"attribution.npy", "saliency.npy"} <= set(result["files"])
    assert result["di_fold_half"] == want.di_fold_half and result["completeness"] == want.completeness


def test_lr_input_and_options(tmp_path, capsys):
    lr = Image.open(data_path("astronaut.png")).resize((32, 32), Image.BICUBIC)
    lr.save(tmp_path / "lr.png")
    code = main(["lam", "--imgpath", str(tmp_path / "lr.png"), "--lr-input", "--h", "40", "--w", "50",
                 "--window_size", "8", "--fold", "10", "--mode", "robust", "--batch-size", "3", "--alpha", "0.3",
                 "--zoomfactor", "2", "--output_dir", str(tmp_path / "o"), "--no-progress", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    assert (result["mode"], result["batch_size"], result["fold"], result["lr_size"]) == ("robust", 3, 10, [32, 32])
    assert Image.open(tmp_path / "o" / "saliency_abs.png").size == (64, 64)
    assert_titled_grid(tmp_path / "o", ["window_position", "saliency_abs", "blend_abs", "sr"])
    assert not (tmp_path / "o" / "blend_kde.png").exists()


@pytest.mark.parametrize(
    "mode,note",
    [("I;16", "16-bit"), ("L", "converted L to RGB"), ("RGBA", "converted RGBA to RGB"), ("P", "converted P to RGB")],
)
def test_odd_image_formats_are_converted_with_a_note(tmp_path, capsys, mode, note):
    base = Image.open(data_path("astronaut.png")).resize((64, 64))
    if mode == "I;16":
        img = Image.fromarray((np.asarray(base.convert("L"), dtype=np.uint16) * 257))
    else:
        img = base.convert(mode)
    img.save(tmp_path / "odd.png")
    code = main(["lam", "--imgpath", str(tmp_path / "odd.png"), "--h", "8", "--w", "8", "--fold", "4",
                 "--output_dir", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert note in err
    assert (tmp_path / "o" / "result.json").exists()


# -- bad input: architectures that are not usable SR models -------------------------------------------


@lamfast.register_model("test-not-integer")
class NotIntegerScale(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return nn.functional.interpolate(self.conv(x), scale_factor=2.5)


@lamfast.register_model("test-one-channel")
class OneChannel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return nn.functional.pixel_shuffle(self.conv(x), 2)


def test_a_model_with_one_output_channel_gets_its_figures(tmp_path, capsys):
    """RGB in, one band out (before: refused as "not 3 channels"): the SR panel is drawn gray."""
    out = tmp_path / "o"
    code = main(["lam", "--modelpath", _checkpoint(tmp_path, OneChannel(), "o.pth"), "--arch", "test-one-channel",
                 "--fold", "2", "--no-progress", "--output-dir", str(out)])
    assert code == 0, capsys.readouterr().err
    sr = np.asarray(Image.open(out / "sr.png"))
    assert sr.ndim == 3 and (sr[..., 0] == sr[..., 1]).all() and (sr[..., 1] == sr[..., 2]).all()
    assert json.loads((out / "result.json").read_text())["sr_size"] == [256, 256]  # x2 of the 128² LR


@lamfast.register_model("test-nan")
class ReturnsNaN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 1)

    def forward(self, x):
        return nn.functional.pixel_shuffle(self.conv(x), 2) * float("nan")


def _checkpoint(tmp_path, module: nn.Module, name="m.pth", whole=False):
    path = tmp_path / name
    torch.save(module if whole else module.state_dict(), path)
    return str(path)


def _cases(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(data_path("astronaut.png").read_bytes()[:2000])
    tiny_weights = _checkpoint(tmp_path, lamfast.models.bundled_model().model, "tiny.pth")
    return {
        "missing image": (["--imgpath", str(tmp_path / "nope.png")], "image not found"),
        "corrupt image": (["--imgpath", str(corrupt)], "image"),
        "truncated image": (["--imgpath", str(truncated)], "image"),
        "non-image file": (["--imgpath", str(text)], "not an image file"),
        "window partly outside": (["--h", "250"], "outside"),
        "window fully outside": (["--w", "1000"], "outside"),
        "window too small": (["--window_size", "1"], "--window-size"),
        "not an integer multiple": (["--modelpath", _checkpoint(tmp_path, NotIntegerScale()), "--arch",
                                     "test-not-integer"], "integer multiple"),
        "model returns NaN": (["--modelpath", _checkpoint(tmp_path, ReturnsNaN(), "n.pth"), "--arch", "test-nan"],
                              "NaN"),
        "checkpoint with wrong keys": (["--modelpath", tiny_weights, "--arch", "edsr"], "does not fit"),
        "missing checkpoint": (["--modelpath", str(tmp_path / "none.pth")], "not found"),
        "pickle without flag": (["--modelpath", _checkpoint(tmp_path, OneChannel(), "w.pth", whole=True)],
                                "--unsafe-pickle"),
        "unknown architecture": (["--modelpath", tiny_weights, "--arch", "nonet"], "unknown architecture"),
        "bad fold": (["--fold", "0"], "fold"),
        "even l": (["--l", "4"], "l must be"),
        "bad alpha": (["--alpha", "2"], "alpha"),
    }


CASE_NAMES = [
    "missing image", "corrupt image", "truncated image", "non-image file", "window partly outside",
    "window fully outside", "window too small", "not an integer multiple", "model returns NaN",
    "checkpoint with wrong keys", "missing checkpoint", "pickle without flag", "unknown architecture", "bad fold",
    "even l", "bad alpha",
]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input_gives_one_line_and_no_output(tmp_path, capsys, case):
    cases = _cases(tmp_path)
    assert set(cases) == set(CASE_NAMES)
    args, fragment = cases[case]
    out = tmp_path / "out"
    quick = [] if "--fold" in args else ["--fold", "4"]
    code = main(["lam", *args, *quick, "--output_dir", str(out), "--no-progress"])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code != 0
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("lamfast: error:") and fragment in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert not (out / "result.json").exists() and not (out / "grid.png").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_device_without_cuda(tmp_path, capsys):
    code = main(["lam", "--device", "cuda", "--output_dir", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "CUDA is not available" in err[0]


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lamfast", "lam", "--imgpath", str(tmp_path / "missing.png")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"lamfast: error: image not found: {tmp_path / 'missing.png'}"]


def test_lam_takes_window_size_with_a_hyphen(tmp_path):
    assert main(["lam", "--window-size", "8", "--fold", "2", "--no-progress", "--output-dir", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "result.json").read_text())["window_size"] == 8


def test_a_failed_lam_run_leaves_no_earlier_output_behind(tmp_path):
    out = tmp_path / "o"
    assert main(["lam", "--kde", "--fold", "2", "--no-progress", "--output-dir", str(out)]) == 0
    assert (out / "result.json").exists() and (out / "blend_kde.png").exists()
    assert main(["lam", "--h", "4000", "--fold", "2", "--no-progress", "--output-dir", str(out)]) == 1
    assert not (out / "result.json").exists() and not (out / "blend_kde.png").exists()


def test_rgba_note_tells_what_happened(tmp_path):
    from lamfast.imageio import read_rgb

    img, notes = read_rgb(random_png(tmp_path / "a.png", mode="RGBA"))
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
