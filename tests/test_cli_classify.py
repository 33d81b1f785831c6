"""``lamfast cam`` / ``attr`` / ``attention`` end to end and their bad input."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lamfast.cli import main
from lamfast.shapes import make_shapes

from conftest import import_with_torchvision_shim


@pytest.fixture()
def shape_png(tmp_path):
    x, _, _ = make_shapes(1, seed=123)
    path = tmp_path / "shape.png"
    Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("method", ["gradcam", "GradCAM++", "xgradcam", "EigenCAM", "eigengradcam", "layercam",
                                    "hirescam", "scorecam", "ablationcam"])
def test_cam_methods(tmp_path, shape_png, capsys, method):
    out = tmp_path / "cam.png"
    assert main(["cam", str(shape_png), "--method", method, "--save-path", str(out)]) == 0
    assert Image.open(out).size == (64, 64)
    assert "class" in capsys.readouterr().out


def test_cam_options_and_preview(tmp_path, shape_png, capsys):
    out = tmp_path / "c.png"
    code = main(["cam", str(shape_png), "--target-layers", "features.-1", "features[5]", "--target-category", "2",
                 "--aug-smooth", "--eigen-smooth", "--device", "cpu", "--save-path", str(out)])
    assert code == 0 and out.exists()
    assert main(["cam", "--preview-model"]) == 0
    assert "features.11  ReLU" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["saliency", "inputxgradient", "ig", "blurig", "guidedbackprop", "smoothgrad"])
def test_attr_methods(tmp_path, shape_png, method):
    out = tmp_path / "a.png"
    assert main(["attr", str(shape_png), "--method", method, "--n-steps", "8", "--save-path", str(out)]) == 0
    assert np.asarray(Image.open(out)).std() > 0


def test_attention_on_a_timm_vit(tmp_path, shape_png, capsys):
    import_with_torchvision_shim("timm")
    out = tmp_path / "att.png"
    for method in ("cls", "rollout", "chefer"):
        assert main(["attention", str(shape_png), "--model", "timm:vit_tiny_patch16_224", "--method", method,
                     "--save-path", str(out)]) == 0
        assert (tmp_path / "att_grid.png").exists()
    assert "random weights" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["cam", "{img}", "--method", "nosuchcam"], "unknown method"),
        (["cam", "{img}", "--target-layers", "features.99"], "unknown layer"),
        (["cam", "{img}", "--target-layers", "nothere"], "unknown layer"),
        (["cam", "{img}", "--target-category", "7"], "out of range"),
        (["cam", "{missing}"], "image not found"),
        (["attr", "{img}", "--method", "lime"], "unknown method"),
        (["attention", "{img}"], "attention"),  # the bundled CNN has no attention
        (["cam", "{img}", "--model", "resnet"], "--model must be"),
    ],
)
def test_bad_input_one_line(tmp_path, shape_png, capsys, args, fragment):
    args = [a.format(img=shape_png, missing=tmp_path / "missing.png") for a in args]
    code = main([*args, "--save-path", str(tmp_path / "o.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("lamfast: error:") and fragment in err[0]
    assert not (tmp_path / "o.png").exists()
