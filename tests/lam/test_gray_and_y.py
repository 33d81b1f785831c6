"""Grayscale, 16-bit and Y-channel models from image files, on the command line and in a dataset run
(P13, part 1): what the model is fed, what it is drawn on, and the notes that say so."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import lamfast
from lamfast.cli import main
from lamfast.imageio import to_tensor, ycbcr_y
from lamfast.models import data_path
from lamfast.request import prepare_input

from conftest import assert_close


@lamfast.register_model("test-gray-x2")
class GraySR(nn.Module):
    """One band in, one band out, x2 (a VDSR/SRCNN-style Y-channel model, small)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 6, 3, padding=1)
        self.b = nn.Conv2d(6, 4, 3, padding=1)

    def forward(self, x):
        return F.pixel_shuffle(self.b(torch.tanh(self.a(x))), 2)


@pytest.fixture()
def gray_ckpt(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "gray.pt"
    torch.save(GraySR().state_dict(), path)
    return path


def test_y_is_matlabs_rgb2ycbcr():
    rgb = torch.tensor([[[0.0, 1.0, 1.0]], [[0.0, 1.0, 0.0]], [[0.0, 1.0, 0.0]]])  # black, white, red
    assert_close(ycbcr_y(rgb) * 255, torch.tensor([[[16.0, 235.0, 16.0 + 65.481]]]), "formula", dtype=torch.float64)


def test_auto_reads_gray_for_a_one_band_model_and_y_on_request(gray_ckpt, tmp_path, capsys):
    for color, note in (("auto", "the model takes 1 channel: the image is read as grayscale"),
                        ("y", None)):
        out = tmp_path / color
        code = main(["lam", "--modelpath", str(gray_ckpt), "--arch", "test-gray-x2", "--color", color, "--fold", "3",
                     "--h", "100", "--w", "100", "--no-progress", "--output-dir", str(out)])
        err = capsys.readouterr().err
        assert code == 0, err
        assert (note in err) if note else ("grayscale" not in err)
        summary = json.loads((out / "result.json").read_text())
        assert summary["color"] == ("gray" if color == "auto" else "y") and summary["lr_size"] == [128, 128]
        window = np.asarray(Image.open(out / "window_position.png").convert("RGB"))
        assert window.shape == (256, 256, 3)
    # the numbers: the Y of the bicubic RGB LR, as SR evaluation feeds a Y model
    model = lamfast.load_model(gray_ckpt, arch="test-gray-x2").model
    rgb = Image.open(data_path("astronaut.png")).convert("RGB")
    lr = rgb.resize((128, 128), Image.BICUBIC)
    want = lamfast.lam(model, ycbcr_y(to_tensor(lr)), 100, 100, 16, fold=3)
    assert json.loads((tmp_path / "y" / "result.json").read_text())["di"] == pytest.approx(want.di, abs=1e-9)


def test_16_bit_gray_files_are_read_as_they_are(gray_ckpt, tmp_path):
    arr = (np.random.default_rng(0).random((32, 32)) * 65535).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    model = lamfast.load_model(gray_ckpt, arch="test-gray-x2").model
    sr_input = prepare_input(model, tmp_path / "deep.png", lr_input=True)
    assert sr_input.color == "gray" and any("values / 65535" in n for n in sr_input.notes)
    assert_close(sr_input.tensor()[0], arr / 65535.0, "same_lam")  # not cut to 8 bits
    hr, lr = sr_input.views()
    assert lr.mode == "L" and lr.size == (32, 32) and hr.size == (64, 64)


def test_a_dataset_run_and_its_report_take_a_gray_model(gray_ckpt, tmp_path):
    from lamfast.dataset import ResultStore, write_report

    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(2):
        Image.open(data_path("astronaut.png")).crop((i * 40, 0, i * 40 + 64, 64)).save(images / f"a{i}.png")
    store = tmp_path / "s.sqlite"
    code = main(["run", str(images), "--model", f"test-gray-x2:{gray_ckpt}", "--windows", "grid:32", "--fold", "2",
                 "--no-progress", "--store", str(store)])
    assert code == 0
    with ResultStore(store) as db:
        rows = [r for r in db.rows(with_maps=True)]
    assert rows and all(r["status"] == "ok" and r["attribution"].shape[0] == 1 for r in rows)
    index = write_report(store, tmp_path / "report")
    assert "(image unreadable)" not in index.read_text()


def test_channels_and_color_must_agree(gray_ckpt, tmp_path, capsys):
    code = main(["lam", "--modelpath", str(gray_ckpt), "--arch", "test-gray-x2", "--channels", "3", "--color", "y",
                 "--output-dir", str(tmp_path / "o")])
    assert code == 1 and "--channels 3 and --color y disagree" in capsys.readouterr().err
