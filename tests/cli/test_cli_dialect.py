"""One CLI dialect: --model [NAME=]SPEC and --model-kwargs wherever a model loads, -o/--output wherever a command writes,
one spelling per flag with the seed tools' spellings as aliases, a parser per mode, help for every flag, typed helpers
that write nothing into args, and one-line errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import lamfast
from lamfast.cli import build_parser, main

from cli_runs import random_png, run_cli


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
                    assert "_" not in longs[0], (name, longs)  # the canonical spelling, hyphenated, comes first


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
    img = random_png(tmp_path / "a.png", 16)
    done = run_cli("erf", str(img), "--lr-input", "--model", f"{arch}:Net:{tmp_path / 'net.pt'}", "-o",
                str(tmp_path / "erf"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith("(RuntimeError: RuntimeError)"), done.stderr


def test_debug_env_shows_the_traceback_and_other_errors_say_their_type(tmp_path):
    quiet = run_cli("lam", "--sigma", "0", "--no-progress", "--output-dir", str(tmp_path))
    loud = run_cli("lam", "--sigma", "0", "--no-progress", "--output-dir", str(tmp_path), env={"LAMFAST_DEBUG": "1"})
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    assert loud.returncode != 0 and "Traceback" in loud.stderr and "with sigma 0 every point" in loud.stderr


def _long_options(parser):
    for action in parser._actions:
        yield action, [o for o in action.option_strings if o.startswith("--")]


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
    done = run_cli("lam", "--modelpath", str(tmp_path / "whole.pth"), "--output-dir", str(tmp_path / "o"))
    assert done.stderr.strip().endswith("allow it with --unsafe-pickle only if you trust it"), done.stderr


def _commands():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices


LOADS_A_MODEL = {"lam", "lam-video", "explore", "run", "erf", "cem", "cam", "attr", "attention", "attention-sr",
                 "attention-guide"}
WRITES = {"lam", "lam-video", "explore", "run", "export", "merge", "report", "erf", "cem", "faig", "cam", "attr", "attention",
          "attention-sr", "attention-guide"}


def test_every_command_that_loads_a_model_takes_model_and_model_kwargs():
    commands = _commands()
    for name in LOADS_A_MODEL:
        options = {o: a.dest for a in commands[name]._actions for o in a.option_strings}
        assert options.get("--model") == "model" and options.get("--model-kwargs") == "model_kwargs", name
        assert options.get("--arch-kwargs") == "model_kwargs", name  # the older spelling, an alias
    assert {n for n, p in commands.items() if any("--model" in a.option_strings for a in p._actions)} == LOADS_A_MODEL


def test_every_command_that_writes_takes_o_output():
    commands = _commands()
    for name in WRITES:
        options = {o for a in commands[name]._actions for o in a.option_strings}
        assert {"-o", "--output"} <= options, name
    assert "--store" in {o for a in commands["run"]._actions for o in a.option_strings}  # run's, with -o as its alias


def test_merge_takes_its_output_by_o(tmp_path, capsys):
    assert main(["merge", str(tmp_path / "a.sqlite"), "-o", str(tmp_path / "out.sqlite")]) == 1
    assert "no such results store" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["lam", "--modelpath", "bundled", "--imgpath", "IMG", "--output_dir", "OUT", "--window_size", "8"],
    ["lam", "--video", "--modelpath", "VIDEO", "--output_dir", "OUT"],
    ["cam", "IMG", "--target-layers", "features.-1", "--target-category", "1", "--save-path", "OUT/c.png",
     "--vit-like", "--num-extra-tokens", "1", "--aug-smooth", "--eigen-smooth"],
    ["attention", "IMG", "--method", "sr-window", "--modelpath", "bundled", "--output_dir", "OUT"],
    ["attention", "--image_path", "IMG", "--model_path", "CKPT", "--arch", "vit_small", "--patch_size", "16",
     "--image_size", "224", "--output_dir", "OUT"],
])
def test_the_seed_tools_command_lines_still_parse(argv):
    """The unofficial LAM tool's, vis_cam.py's and the attention guide's spellings: aliases that still work."""
    from lamfast.cli import routed

    args = build_parser().parse_args(routed(argv))
    assert args.output in ("OUT", "OUT/c.png")


def test_lam_and_lam_video_are_two_parsers():
    from lamfast.cli import routed

    assert routed(["lam", "--video", "clip/", "--h", "4"])[0] == "lam-video"
    assert routed(["lam", "--video=clip/"])[0] == "lam-video" and routed(["lam", "--h", "4"])[0] == "lam"
    commands = _commands()
    image_flags = {o for a in commands["lam"]._actions for o in a.option_strings}
    video_flags = {o for a in commands["lam-video"]._actions for o in a.option_strings}
    assert "--frame" in video_flags - image_flags and {"--imgpath", "--bands", "--kde"} <= image_flags - video_flags


def test_every_flag_has_help():
    for name, parser in _commands().items():
        for action in parser._actions:
            if action.option_strings or action.dest not in ("help",):
                assert action.help and action.help.strip(), (name, action.option_strings or action.dest)


def test_batch_size_means_one_thing():
    """Inputs per forward/backward pass, wherever it is a flag (path points for LAM, images for erf)."""
    for name, parser in _commands().items():
        for action in parser._actions:
            if "--batch-size" in action.option_strings:
                assert action.help.startswith("inputs per forward/backward pass"), name


class _Frozen:
    """Stands in for argparse's Namespace once parsed: reading is fine, writing raises."""

    def __setattr__(self, name, value):
        raise AssertionError(f"a command wrote args.{name}")


def _frozen(args):
    frozen = _Frozen()
    object.__setattr__(frozen, "__dict__", dict(vars(args)))
    return frozen


@pytest.mark.parametrize("argv", [
    ["lam", "--fold", "2", "--no-progress"],
    ["lam", "--video", "--fold", "2", "--no-progress"],
    ["attention", "IMG", "--method", "rollout"],
])
def test_commands_write_nothing_into_args(argv, tmp_path, monkeypatch):
    from lamfast.cli import routed

    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(routed(argv))
    try:
        args.func(_frozen(args))
    except AssertionError:
        raise
    except Exception:  # noqa: BLE001 - failing later is fine (IMG is no image); writing into args is not
        pass


def test_an_unknown_flag_is_one_line_with_exit_2(capsys):
    assert main(["lam", "--no-such-flag"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lamfast: error: unrecognized arguments: --no-such-flag"]
