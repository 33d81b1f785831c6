"""Architectures from the command line, loader notes and overrides, early errors (P7)."""
from __future__ import annotations

import json
import textwrap

import pytest
import torch

from lamfast.cli import main
from lamfast.models import EDSR, load_model
from lamfast.models.custom import ArchSpecError

ARCH_FILE = '''
import torch
from torch import nn


class MyNet(nn.Module):
    """A user's x2 SR net: conv, ReLU, conv to 12 channels, pixel shuffle."""

    def __init__(self, width=16):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 12, 3, padding=1))

    def forward(self, x):
        return nn.functional.pixel_shuffle(self.body(x), 2)
'''


@pytest.fixture
def user_arch(tmp_path):
    """(path of my_arch.py, checkpoint of MyNet(width=8))."""
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "my_arch.py").write_text(ARCH_FILE)
    ns: dict = {}
    exec(ARCH_FILE, ns)  # noqa: S102 - the test's own class, to make a checkpoint
    torch.manual_seed(0)
    ckpt = tmp_path / "mynet.pth"
    torch.save(ns["MyNet"](width=8).state_dict(), ckpt)
    return folder / "my_arch.py", ckpt


def _err(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_lam_with_a_class_from_a_file(user_arch, tmp_path, capsys):
    arch_file, ckpt = user_arch
    out = tmp_path / "o"
    assert main(["lam", "--modelpath", str(ckpt), "--arch", f"{arch_file}:MyNet", "--arch-kwargs", '{"width": 8}',
                 "--imgpath", str(_png(tmp_path, 24)), "--lr-input", "--h", "8", "--w", "8", "--window_size", "8",
                 "--fold", "3", "--no-progress", "--output_dir", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["model"]["arch"] == f"{arch_file}:MyNet" and result["model_kwargs"] == {"width": 8}
    assert any("built" in n and "width=8" in n for n in result["model"]["notes"])
    assert "width=8" in capsys.readouterr().err


def test_a_class_from_a_module(user_arch, monkeypatch):
    arch_file, ckpt = user_arch
    monkeypatch.syspath_prepend(str(arch_file.parent))
    loaded = load_model(ckpt, arch="my_arch:MyNet", model_kwargs={"width": 8})
    assert loaded.arch == "my_arch:MyNet"
    assert loaded.model(torch.rand(1, 3, 5, 5)).shape == (1, 3, 10, 10)


@pytest.mark.parametrize("arch,kwargs,fragment", [
    ("{dir}/missing.py:MyNet", "{{}}", "architecture file not found"),
    ("{dir}/my_arch.py:Nope", "{{}}", "has no 'Nope'"),
    ("{dir}/my_arch.py:MyNet", '{{"depth": 3}}', "unexpected keyword argument 'depth'"),
    ("{dir}/my_arch.py:MyNet", '{{"width": 16}}', "does not fit"),
    ("{dir}/my_arch.py:MyNet", "[1, 2]", "--arch-kwargs: must be a JSON object"),
    ("{dir}/my_arch.py:MyNet", "{{width: 8}}", "--arch-kwargs: not valid JSON"),
    ("carnn", "{{}}", "unknown architecture 'carnn'"),
])
def test_bad_architecture_specs_are_one_line(user_arch, tmp_path, capsys, arch, kwargs, fragment):
    arch_file, ckpt = user_arch
    out = tmp_path / "o"
    code = main(["lam", "--modelpath", str(ckpt), "--arch", arch.format(dir=arch_file.parent),
                 "--arch-kwargs", kwargs.format(), "--fold", "2", "--no-progress", "--output_dir", str(out)])
    err = _err(capsys)
    assert code != 0 and len(err) == 1 and fragment in err[0], err
    assert not out.exists()


def test_a_file_that_fails_to_import_is_one_line(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("import not_a_module_anywhere\n")
    with pytest.raises(ArchSpecError, match="importing .*broken.py failed: ModuleNotFoundError"):
        load_model(_ckpt(tmp_path), arch=f"{bad}:Net")


def test_run_with_an_arch_spec_and_kwargs(user_arch, tmp_path, capsys):
    arch_file, ckpt = user_arch
    images = tmp_path / "imgs"
    images.mkdir()
    _png(images, 20, "a.png")
    store = tmp_path / "s.sqlite"
    assert main(["run", str(images), "--model", f"{arch_file}:MyNet:{ckpt}", "--arch-kwargs", '{"width": 8}',
                 "--lr-input", "--windows", "grid:8:16", "--fold", "2", "--no-progress", "--store", str(store)]) == 0
    assert "0 failed" in capsys.readouterr().out


def test_archs_lists_the_registry(capsys):
    assert main(["archs"]) == 0
    out = capsys.readouterr().out
    for name in ("carn", "edsr", "rnan", "san", "tinysr"):
        assert f"  {name} " in out
    assert "file.py:ClassName" in out


# -- notes and overrides -----------------------------------------------------------------------------


def _edsr_ckpt(tmp_path, **kwargs) -> tuple:
    torch.manual_seed(0)
    edsr = EDSR(n_resblocks=1, **kwargs)
    path = tmp_path / "edsr.pt"
    torch.save(edsr.state_dict(), path)
    return edsr, path


def test_edsr_res_scale_is_announced_and_can_be_overridden(tmp_path):
    _, path = _edsr_ckpt(tmp_path, n_feats=256, scale=2, rgb_range=1.0)  # LAM_Demo's layout at width 256
    loaded = load_model(path)
    assert loaded.model.body[0].res_scale == 1.0
    assert any("res_scale 1.0 assumed" in n and "res_scale 0.1" in n for n in loaded.notes)
    other = load_model(path, model_kwargs={"res_scale": 0.1})
    assert other.model.body[0].res_scale == 0.1
    assert any("as given res_scale=0.1" in n for n in other.notes)
    assert not any("res_scale 1.0 assumed" in n for n in other.notes)
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        assert not torch.allclose(loaded.model(x), other.model(x))


def test_edsr_large_layout_assumes_edsr_pytorch_res_scale(tmp_path):
    _, path = _edsr_ckpt(tmp_path, n_feats=256, scale=2, rgb_range=255.0)
    loaded = load_model(path)
    assert loaded.model.model.body[0].res_scale == 0.1  # inside the 0-255 RangeAdapter
    assert any("res_scale 0.1 assumed" in n for n in loaded.notes)


def test_rgb_range_snaps_to_255_with_a_mean_that_is_not_div2k(tmp_path):
    edsr, path = _edsr_ckpt(tmp_path, n_feats=8, scale=2, rgb_range=255.0)
    sd = edsr.state_dict()
    mean = torch.tensor([0.47, 0.45, 0.40])
    sd["sub_mean.bias"], sd["add_mean.bias"] = -255 * mean, 255 * mean
    torch.save(sd, path)
    loaded = load_model(path)
    assert loaded.model.rgb_range == 255.0
    assert any("rgb_range 255" in n and "0.4700" in n and "not DIV2K's" in n for n in loaded.notes)


def test_a_mean_shift_that_fits_no_range_is_refused(tmp_path, capsys):
    edsr, path = _edsr_ckpt(tmp_path, n_feats=8, scale=2)
    sd = edsr.state_dict()
    sd["sub_mean.bias"] = torch.tensor([-5.0, -4.0, -6.0])
    torch.save(sd, path)
    assert main(["lam", "--modelpath", str(path), "--fold", "2", "--no-progress", "--output_dir",
                 str(tmp_path / "o")]) != 0
    err = _err(capsys)
    assert len(err) == 1 and "fits neither rgb_range 1 nor 255" in err[0] and "rgb_range" in err[0]
    # and rgb_range given settles it
    assert load_model(path, model_kwargs={"rgb_range": 255.0}).arch == "edsr"


def test_notes_reach_result_json(tmp_path, capsys):
    _, path = _edsr_ckpt(tmp_path, n_feats=8, scale=2, rgb_range=1.0)
    out = tmp_path / "o"
    assert main(["lam", "--modelpath", str(path), "--imgpath", str(_png(tmp_path, 24)), "--lr-input", "--h", "8",
                 "--w", "8", "--window_size", "8", "--fold", "2", "--no-progress", "--output_dir", str(out)]) == 0
    notes = json.loads((out / "result.json").read_text())["model"]["notes"]
    err = capsys.readouterr().err
    for n in notes:
        assert f"lamfast: note: {n}" in err
    assert any("from the checkpoint" in n and "scale=2" in n for n in notes)


# -- early errors --------------------------------------------------------------------------------------


def test_output_dir_that_is_a_file_fails_before_the_model_loads(tmp_path, capsys, monkeypatch):
    import lamfast.models

    def must_not_load(*a, **k):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(lamfast.models, "load_model", must_not_load)
    target = tmp_path / "taken"
    target.write_text("x")
    assert main(["lam", "--output_dir", str(target), "--no-progress"]) != 0
    err = _err(capsys)
    assert len(err) == 1 and "--output_dir" in err[0] and "not a directory" in err[0]  # the spelling typed


def test_a_classifier_given_as_sr_model_is_reported_against_the_users_image(tmp_path, capsys):
    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x).mean((2, 3))

    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "cls.py").write_text(textwrap.dedent('''
        import torch
        class Classifier(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 4, 3)
            def forward(self, x):
                return self.conv(x).mean((2, 3))
    '''))
    torch.save(Classifier().state_dict(), tmp_path / "c.pt")
    img = _png(tmp_path, 30, "photo.png")
    assert main(["lam", "--modelpath", str(tmp_path / "c.pt"), "--arch", f"{folder / 'cls.py'}:Classifier",
                 "--imgpath", str(img), "--fold", "2", "--no-progress", "--output_dir", str(tmp_path / "o")]) != 0
    errors = [line for line in _err(capsys) if line.startswith("lamfast: error:")]
    assert len(errors) == 1 and errors[0].startswith("lamfast: error: --modelpath: photo.png") and "24x24" not in errors[0]


def _png(folder, size: int, name: str = "img.png"):
    from PIL import Image

    gen = torch.Generator().manual_seed(size)
    arr = (torch.rand(size, size, 3, generator=gen) * 255).to(torch.uint8).numpy()
    path = folder / name
    Image.fromarray(arr).save(path)
    return path


def _ckpt(tmp_path):
    path = tmp_path / "any.pt"
    torch.save({"w": torch.zeros(1)}, path)
    return path


def test_archs_lists_what_spandrel_detects(capsys):
    from conftest import optional_module

    optional_module("spandrel")
    assert main(["archs"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("spandrel detects")][0]
    assert "RCAN" in line and "SwinIR" in line and "HAT" in line


def test_run_reports_a_non_sr_model_against_the_image(tmp_path, capsys):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "cls.py").write_text("import torch\nclass C(torch.nn.Module):\n    def __init__(self):\n"
                                   "        super().__init__()\n        self.conv = torch.nn.Conv2d(3, 4, 3)\n"
                                   "    def forward(self, x):\n        return self.conv(x).mean((2, 3))\n")
    ns: dict = {}
    exec((folder / "cls.py").read_text(), ns)  # noqa: S102
    torch.save(ns["C"]().state_dict(), tmp_path / "c.pt")
    images = tmp_path / "imgs"
    images.mkdir()
    _png(images, 20, "leaf.png")
    code = main(["run", str(images), "--model", f"{folder / 'cls.py'}:C:{tmp_path / 'c.pt'}", "--fold", "2",
                 "--no-progress", "--store", str(tmp_path / "s.sqlite")])
    assert code == 1
    err = capsys.readouterr().err
    assert "model: leaf.png (its top-left 48x48 corner, to find the scale): model must return a tensor" in err
