"""lamfast attention, attention-sr and attention-guide: each mode its own parser; the seed tools' spellings."""
from __future__ import annotations

import subprocess
import sys

import pytest

from lamfast.cli import build_parser, main

from cli_runs import random_png


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
    img = random_png(tmp_path / "a.png")
    done = subprocess.run([sys.executable, "-O", "-m", "lamfast", "attention", str(img), "--method", "sr-window",
                           "--location", "1,2,3"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip() == "lamfast: error: --location takes ROW,COL in LR pixels, got '1,2,3'"
