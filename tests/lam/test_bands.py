"""Multi-band inputs from files (P13, part 5): ``.npy`` bands [C,H,W] made LR band by band, LAM on
them equal to LAM on the tensor, and the figures on the mean of the bands or on three named bands."""
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
from lamfast.imageio import Bands, display, parse_bands, read_bands, to_pil
from lamfast.errors import LamfastError
from lamfast.request import prepare_input

from conftest import assert_close


@lamfast.register_model("test-bands5-x2")
class FiveBandSR(nn.Module):
    """Five bands in and out, x2."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(5, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 20, 3, padding=1)

    def forward(self, x):
        return F.pixel_shuffle(self.b(torch.tanh(self.a(x))), 2)


@pytest.fixture()
def scene(tmp_path):
    arr = np.random.default_rng(0).random((5, 40, 36)).astype(np.float32)
    path = tmp_path / "scene.npy"
    np.save(path, arr)
    return path, arr


@pytest.fixture()
def ckpt(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "five.pt"
    torch.save(FiveBandSR().state_dict(), path)
    return path


def test_bands_are_read_as_they_are_and_made_lr_band_by_band(scene):
    path, arr = scene
    model = FiveBandSR().eval()
    sr_input = prepare_input(model, path)
    assert (sr_input.color, sr_input.scale) == ("bands", 2)
    want = np.stack([np.asarray(Image.fromarray(a, "F").resize((18, 20), Image.BICUBIC)) for a in arr])
    assert torch.equal(sr_input.tensor(), torch.from_numpy(want))
    assert torch.equal(sr_input.hr_tensor(), torch.from_numpy(arr))
    got = lamfast.lam(model, sr_input.tensor(), 10, 10, 12, fold=6)
    ref = lamfast.lam(model, torch.from_numpy(want), 10, 10, 12, fold=6, crop="off")
    assert_close(got.attribution, ref.attribution, "crop")


@pytest.mark.parametrize("dtype,peak", [(np.uint8, 255), (np.uint16, 65535)])
def test_integer_bands_are_scaled_to_the_unit_range(tmp_path, dtype, peak):
    arr = np.arange(2 * 4 * 5, dtype=dtype).reshape(2, 4, 5) * (peak // 40)
    np.save(tmp_path / "b.npy", arr)
    bands, notes = read_bands(tmp_path / "b.npy")
    assert bands.bands == 2 and any(f"/ {peak}" in n for n in notes)
    assert torch.allclose(bands.tensor().double(), torch.from_numpy(arr / peak), atol=1e-7)


def test_the_figures_draw_the_mean_of_the_bands_or_three_of_them(scene):
    _, arr = scene
    bands = Bands.from_array(arr)
    mean = np.asarray(display(bands, "bands"))
    assert mean.ndim == 2
    assert np.array_equal(mean, np.clip(arr.mean(0), 0, 1).__mul__(255).astype(np.uint8))
    picked = np.asarray(display(bands, "bands", (3, 2, 1)))
    assert np.array_equal(picked, (np.clip(arr[[2, 1, 0]], 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0))
    assert np.array_equal(np.asarray(to_pil(torch.from_numpy(arr), (5, 4, 3)))[..., 0],
                          (arr[4] * 255).astype(np.uint8))


def test_lam_cli_on_a_band_file_with_named_bands(scene, ckpt, tmp_path, capsys):
    path, _ = scene
    out = tmp_path / "out"
    assert main(["lam", "--modelpath", str(ckpt), "--arch", "test-bands5-x2", "--imgpath", str(path), "--h", "8",
                 "--w", "8", "--bands", "3,2,1", "--fold", "4", "--no-progress", "--output-dir", str(out)]) == 0
    summary = json.loads((out / "result.json").read_text())
    assert summary["color"] == "bands" and summary["bands"] == [3, 2, 1]
    assert Image.open(out / "window_position.png").mode == "RGB"
    assert "read 5 band(s)" in capsys.readouterr().err


@pytest.mark.parametrize("bands,match", [("3,2", "three band numbers"), ("0,1,2", "three band numbers"),
                                         ("3,2,9", "the image has 5 band(s)")])
def test_bad_bands_are_one_line(scene, ckpt, tmp_path, capsys, bands, match):
    path, _ = scene
    assert main(["lam", "--modelpath", str(ckpt), "--arch", "test-bands5-x2", "--imgpath", str(path), "--bands",
                 bands, "--no-progress", "--output-dir", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lamfast: error: --bands") and match in err[-1], err


def test_a_band_file_that_is_not_bands_and_an_image_for_a_band_model(tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 4, 5)))
    with pytest.raises(LamfastError, match=r"bands must be an array \[C,H,W\]"):
        read_bands(tmp_path / "bad.npy")
    Image.new("RGB", (16, 16)).save(tmp_path / "rgb.png")
    with pytest.raises(LamfastError, match="takes 5 channels"):
        prepare_input(FiveBandSR(), tmp_path / "rgb.png")
    assert parse_bands(None) is None and parse_bands("4,3,2") == (4, 3, 2)


def test_a_dataset_run_takes_band_files_and_the_report_draws_them(scene, ckpt, tmp_path, capsys):
    path, arr = scene
    folder = tmp_path / "scenes"
    folder.mkdir()
    np.save(folder / "a.npy", arr)
    np.save(folder / "b.npy", arr[:, ::-1].copy())
    store = tmp_path / "s.sqlite"
    assert main(["run", str(folder), "--model", f"test-bands5-x2:{ckpt}", "--windows", "top:2:12", "--fold", "4",
                 "--store", str(store), "--no-progress"]) == 0
    assert "2 units done" in capsys.readouterr().out
    from lamfast.dataset.store import ResultStore

    with ResultStore(store) as db:
        rows = list(db.rows(with_maps=True))
    assert len(rows) == 4 and all(r["status"] == "ok" and r["attribution"].shape == (5, 20, 18) for r in rows)
    assert main(["report", str(store), "-o", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "index.html").read_text()
    assert "(image unreadable)" not in page and page.count("<img src='img/") >= 4
