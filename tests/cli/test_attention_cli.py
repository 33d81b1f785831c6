"""lamfast attention, attention-sr and attention-guide: each mode its own parser; the seed tools' spellings."""
from __future__ import annotations

import json
import os
import subprocess
import sys
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


def _parse(argv):
    from lamfast.cli import routed

    return build_parser().parse_args(routed(argv))


def test_attention_output_dir_in_either_spelling_is_the_one_written(tmp_path):
    args = _parse(["attention", "img.png", "--method", "sr-window", "--output_dir", str(tmp_path / "mine")])
    assert args.command == "attention-sr" and args.output == str(tmp_path / "mine")
    args = _parse(["attention", "--image_path", "x.png", "--arch", "vit_small"])
    assert args.command == "attention-guide" and args.output == "attention_viz"


@pytest.mark.parametrize("argv,refused", [
    (["attention", "x.png", "--modelpath", "m.pt"], "--modelpath"),  # an SR flag, classifier mode
    (["attention", "x.png", "--method", "sr-window", "--discard-ratio", "0.5"], "--discard-ratio"),
    (["attention", "--image-path", "x.png", "--location", "1,2"], "--location"),
    (["attention-sr", "x.png", "--method", "rollout"], "--method"),
])
def test_each_mode_is_its_own_parser_and_refuses_the_others_flags(argv, refused, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lamfast: error:") and refused in err[0], err


def test_location_is_checked_without_assert(tmp_path):
    """Under python -O an assert is gone: ROW,COL,EXTRA used to pass."""
    img = _png(tmp_path / "a.png")
    done = subprocess.run([sys.executable, "-O", "-m", "lamfast", "attention", str(img), "--method", "sr-window",
                           "--location", "1,2,3"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip() == "lamfast: error: --location takes ROW,COL in LR pixels, got '1,2,3'"
