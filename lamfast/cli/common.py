"""Helpers shared by the CLI commands."""
from __future__ import annotations

import os
import sys

import torch


class CLIError(Exception):
    """A failure to report as one line on stderr, without a traceback."""


def note(message: str) -> None:
    print(f"lamfast: note: {message}", file=sys.stderr)


def warn(message: str) -> None:
    print(f"lamfast: warning: {' '.join(message.split())}", file=sys.stderr)


def resolve_device(name: str | None) -> torch.device:
    """A usable torch device from ``--device`` (default: cuda if present, else cpu)."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CLIError(f"--device {name}: not a torch device name (try cpu or cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise CLIError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
    if device.type not in ("cpu", "cuda") and not hasattr(torch, device.type):
        raise CLIError(f"--device {name}: unsupported device type")
    return device


def _crop(text: str):
    if text in ("auto", "off"):
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        import argparse

        raise argparse.ArgumentTypeError(f"takes auto, off or a radius >= 0 in LR pixels, got {text!r}")
    return value


def add_input_arguments(parser) -> None:
    """How image files become the model's input: --color, and --channels for the count."""
    parser.add_argument("--color", choices=["auto", "rgb", "gray", "y"], default="auto",
                        help="what the model is fed: rgb, gray (one band; 16-bit files kept as they are) or y (the "
                             "Y of YCbCr, BT.601 as MATLAB's rgb2ycbcr, for Y-channel models); auto: from the "
                             "input channels of the model's first convolution (default auto)")
    parser.add_argument("--channels", type=int, choices=[1, 3], default=None,
                        help="the model's input channels, where the first convolution does not tell: 1 reads gray, "
                             "3 RGB (a shorthand for --color); a .npy image is read as its bands [C,H,W], any C")


def color_flag(args) -> str | None:
    """The ``color`` of prepare_input from --color / --channels (None: from the model)."""
    if args.channels is not None:
        if args.color not in ("auto", "rgb" if args.channels == 3 else "gray", "y" if args.channels == 1 else ""):
            raise CLIError(f"--channels {args.channels} and --color {args.color} disagree")
        if args.color == "auto":
            return "rgb" if args.channels == 3 else "gray"
    return None if args.color == "auto" else args.color


def add_lam_arguments(parser) -> None:
    """The LAM path flags, with the official defaults, on a parser or argument group."""
    parser.add_argument("--fold", type=int, default=50, help="path steps (default 50)")
    parser.add_argument("--sigma", type=float, default=1.2, help="blur at the path start (default 1.2)")
    parser.add_argument("--l", type=int, default=9, help="odd blur kernel size (default 9)")
    parser.add_argument("--mode", choices=["compat", "robust", "official"], default="compat",
                        help="compat: official numbers; official: compat on the official code's OpenCV path, "
                             "bit for bit (needs opencv-python-headless); robust: no NaN from sqrt(0) "
                             "(default compat)")
    parser.add_argument("--batch-size", "--batch_size", type=int, default=None, help="path points per pass (default: from free memory)")
    parser.add_argument("--path", choices=["blur", "linear", "gaussian_linear"], default="blur",
                        help="blur: LAM's Gaussian-blur path; linear: the straight line from --baseline (the "
                             "official LinearPath, or IG); gaussian_linear: the straight line from the image "
                             "blurred once with --sigma and --l (default blur)")
    parser.add_argument("--baseline", choices=["zero", "gaus", "bif", "mean"], default="zero",
                        help="start of --path linear: zero, or the official IG baselines gaus (7x7 Gaussian), bif "
                             "(bilateral), mean (5x5 median), with OpenCV (default zero)")
    parser.add_argument("--objective", choices=["grad", "id"], default="grad",
                        help="grad: the window's gradient magnitude (attr_grad); id: its output values (attr_id) "
                             "(default grad)")
    parser.add_argument("--reduce", choices=["sum", "mean"], default="sum",
                        help="how the objective reduces the window (default sum)")
    parser.add_argument("--crop", type=_crop, default="auto", metavar="auto|off|N",
                        help="auto: run the model on a crop around each window where that is exact (radius "
                             "measured on the model, checked on the image); off: always the whole image; N: "
                             "radius N in LR pixels (default auto)")


def lam_params(args):
    """The validated :class:`lamfast.LAMParams` of parsed LAM flags; a LAMError's ``param`` is the
    flag's dest, so the CLI prints it with the flag (see :func:`lamfast.cli.flag_for`)."""
    from lamfast.lam import LAMParams

    return LAMParams(args.fold, args.sigma, args.l, args.mode, args.batch_size, path=args.path,
                     objective=args.objective, reduce=args.reduce, baseline=args.baseline)


def parse_arch_kwargs_flag(text: str | None) -> dict:
    """``--arch-kwargs`` as a dict (CLIError names the flag)."""
    from lamfast.models.custom import ArchSpecError, parse_arch_kwargs

    try:
        return parse_arch_kwargs(text)
    except ArchSpecError as exc:
        raise CLIError(f"--arch-kwargs: {exc}") from None


def check_output_dir(path, flag: str) -> None:
    """Refuse an output directory that cannot be one, before any long work."""
    from pathlib import Path

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CLIError(f"{flag} {path}: exists and is not a directory")
    parent = next((p for p in [path, *path.parents] if p.exists()), None)
    if parent is not None and parent.is_dir() and not os.access(parent, os.W_OK):
        raise CLIError(f"{flag} {path}: {parent} is not writable")

