"""``lamfast cem``: the folder it writes, equal to the library call, and its one-line errors before any work."""
from __future__ import annotations

import json

import numpy as np
import pytest

import lamfast
from lamfast.cli import main
from lamfast.request import prepare_input


def test_cem_command_writes_what_the_library_computes(tmp_path, capsys):
    out = tmp_path / "cem"
    assert main(["cem", "--roi", "152", "96", "32", "--fine", "5", "--no-progress", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "blocks help" in printed and "the official loop" in printed
    effect = np.load(out / "effect.npy")
    summary = json.loads((out / "cem.json").read_text())
    model = lamfast.load_model()
    data = prepare_input(model, "bundled")
    r = lamfast.cem(model, data.tensor(), np.asarray(data.hr), 152, 96, 32, fine=5)
    np.testing.assert_array_equal(effect, r.effect)
    assert summary["counts"] == r.counts and summary["params"]["fine"] == 5
    assert (out / "cem.png").stat().st_size > 1000


DENOISER = """
import torch
from torch import nn


class Den(nn.Module):
    \"\"\"Scale 1: the input minus a predicted residual (DnCNN's form).\"\"\"

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        return x - 0.3 * torch.tanh(self.b(torch.relu(self.a(x))))
"""


def test_cem_command_denoise_makes_the_official_noisy_input(tmp_path, capsys):
    import torch
    from PIL import Image

    from lamfast.cem.interventions import noisy_input

    (tmp_path / "den.py").write_text(DENOISER)
    ns: dict = {}
    exec(DENOISER, ns)  # noqa: S102 - the test's own class, to make a checkpoint
    torch.manual_seed(0)
    model = ns["Den"]().eval()
    torch.save(model.state_dict(), tmp_path / "den.pth")
    clean = np.asarray(Image.open(lamfast.bundled.data_path("astronaut.png")).convert("RGB"))[64:96, 96:128].copy()
    Image.fromarray(clean).save(tmp_path / "clean.png")
    out = tmp_path / "dn"
    assert main(["cem", str(tmp_path / "clean.png"), "--roi", "8", "8", "8", "--task", "denoise", "--block-size",
                 "2", "--fine", "3", "--model", f"{tmp_path / 'den.py'}:Den:{tmp_path / 'den.pth'}", "--no-progress",
                 "-o", str(out)]) == 0
    x = torch.from_numpy(noisy_input(clean)).permute(2, 0, 1).float() / 255
    r = lamfast.cem(model, x, clean, 8, 8, 8, block_size=2, fine=3, task="denoise")
    np.testing.assert_array_equal(np.load(out / "effect.npy"), r.effect)
    assert r.scale == 1 and r.effect.shape == (16, 16)


@pytest.mark.parametrize("argv,expected", [
    (["--task", "derain"], "--task derain needs --input"),
    (["--rain", "r.png"], "--rain and --beta belong to --task derain"),
    (["--roi", "250", "0", "32"], "runs outside the 256x256 image"),
    (["--block-size", "2"], "smaller than the scale"),
    (["--patches", "/no/such/folder"], "not a folder of patch images"),
])
def test_cem_command_errors_in_one_line(tmp_path, capsys, argv, expected):
    out = tmp_path / "bad"
    base = ["cem", "--roi", "152", "96", "32", "--no-progress", "-o", str(out)]
    code = main((base if "--roi" not in argv else ["cem", "--no-progress", "-o", str(out)]) + argv)
    err = capsys.readouterr().err
    assert code != 0 and expected in err and len(err.strip().splitlines()) == 1, err
    assert not (out / "cem.png").exists()
