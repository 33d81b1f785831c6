"""``lamfast cam`` / ``attr`` / ``attention`` end to end and their bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lamfast.cli import main
from lamfast.shapes import make_shapes

from conftest import optional_module


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
    optional_module("timm")
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
        (["cam", "{img}", "--model", "resnet"], "--model: a classifier is 'bundled' or 'timm:NAME[:CHECKPOINT]', got 'resnet'"),
    ],
)
def test_bad_input_one_line(tmp_path, shape_png, capsys, args, fragment):
    args = [a.format(img=shape_png, missing=tmp_path / "missing.png") for a in args]
    code = main([*args, "--save-path", str(tmp_path / "o.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("lamfast: error:") and fragment in err[0]
    assert not (tmp_path / "o.png").exists()


def test_readme_demo_on_the_bundled_sample(tmp_path, capsys):
    # The README's command: the shipped 256x256 sample (a held-out cross), overlay at the image's own size.
    from lamfast.models import data_path

    out = tmp_path / "cam.png"
    assert main(["cam", str(data_path("shapes_sample.png")), "--method", "gradcam", "--save-path", str(out)]) == 0
    assert "class 3 (cross)" in capsys.readouterr().out
    overlay = np.asarray(Image.open(out))
    assert overlay.shape == (256, 256, 3)
    # the cross sits in the lower right (rows 120-183, columns 176-239 at this size): the map's red is there
    red = overlay[..., 0].astype(int) - overlay[..., 2].astype(int)
    row, col = np.unravel_index(red.argmax(), red.shape)
    assert 120 <= row <= 183 and 176 <= col <= 239


class _NaNModel(torch.nn.Module):
    """NaN logits, or finite logits whose input gradient is NaN (sqrt at 0)."""

    def __init__(self, nan_logits: bool):
        super().__init__()
        self.nan_logits = nan_logits
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        out = self.fc(self.features(x).mean((2, 3))) + (x - x).sqrt().sum((1, 2, 3))[:, None]
        return out * float("nan") if self.nan_logits else out


@pytest.mark.parametrize("command,nan_logits,fragment", [
    ("cam", True, "model's output holds NaN"),
    ("attr", True, "model's output holds NaN"),
    ("attr", False, "attribution holds NaN or Inf"),
])
def test_nan_output_is_one_line_and_writes_nothing(tmp_path, shape_png, capsys, monkeypatch, command, nan_logits,
                                                   fragment):
    import lamfast.cli.classify as classify

    from lamfast.models.classifier import Classifier

    monkeypatch.setattr(classify, "load_classifier", lambda spec, ckpt, kwargs, device: Classifier(
        _NaNModel(nan_logits).to(device).eval(), (64, 64), name="nan"))
    out = tmp_path / "o.png"
    assert main([command, str(shape_png), "--save-path", str(out)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]
    assert not out.exists()
