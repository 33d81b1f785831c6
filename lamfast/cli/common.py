"""What the CLI commands share: one spelling per flag (with the seed tools' spellings as aliases), and
helpers that take typed values.

Every command that loads a model takes ``--model [NAME=]SPEC`` and
``--model-kwargs JSON``; every command that writes takes ``-o/--output``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping

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


def json_object(text: str) -> dict:
    """argparse type: a JSON object (``--model-kwargs '{"width": 64}'``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg} at column {exc.colno}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object like {{\"width\": 64}}, got {text!r}")
    return value


def add_model_arguments(parser, *, what: str, default: str = "bundled", many: bool = False,
                        aliases: tuple[str, ...] = (), arch: bool = False, loader: bool = True) -> None:
    """``--model [NAME=]SPEC`` (``many``: repeatable) and ``--model-kwargs JSON``; with ``loader`` the
    loader's flags (``--rgb-range``, ``--unsafe-pickle``); always ``--device``.

    ``what`` says what SPEC may be; ``aliases`` are older spellings of ``--model`` (``--modelpath``);
    ``arch`` adds ``--arch``, the architecture of ``--model``'s checkpoint named apart.
    """
    parser.add_argument("--model", *aliases, dest="model", action="append" if many else "store",
                        default=None, metavar="[NAME=]SPEC",
                        help=f"{what}; NAME is what outputs call it" + (" (repeatable)" if many else "")
                        + f" (default {default})")
    if arch:
        parser.add_argument("--arch", default=None,
                            help="the architecture of --model's checkpoint, named apart (the same as --model "
                                 "ARCH:CHECKPOINT): a registered name ('lamfast archs'), or your own class as "
                                 "FILE.py:Class or package.module:Class (naming a file runs its code)")
    parser.add_argument("--model-kwargs", "--model_kwargs", "--arch-kwargs", "--arch_kwargs", dest="model_kwargs",
                        type=json_object, default=None, metavar="JSON",
                        help="keyword arguments for the architecture, a JSON object such as '{\"width\": 64}'; for a "
                             "registered one they override what is read from the checkpoint")
    if loader:
        parser.add_argument("--rgb-range", "--rgb_range", type=float, default=None,
                            help="the input range the model expects, e.g. 255 (default: the architecture's own, "
                                 "else 1)")
        parser.add_argument("--unsafe-pickle", "--unsafe_pickle", action="store_true",
                            help="allow full-pickle checkpoints (loading one runs code from the file)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available, else cpu)")


def add_output_argument(parser, *, default: str | None, what: str, aliases: tuple[str, ...] = (),
                        dest: str = "output") -> None:
    """``-o/--output`` (and older spellings) for what the command writes."""
    parser.add_argument("-o", "--output", *aliases, dest=dest, default=default, required=default is None,
                        metavar="PATH", help=what + (f" (default {default})" if default else ""))


def _crop(text: str):
    if text in ("auto", "off"):
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"takes auto, off or a radius >= 0 in LR pixels, got {text!r}")
    return value


def add_input_arguments(parser) -> None:
    """How image files become the model's input: --color, and --channels for the count."""
    parser.add_argument("--color", choices=["auto", "rgb", "gray", "y"], default="auto",
                        help="what the model is fed: rgb, gray (one band; 16-bit files kept as they are) or y (the "
                             "Y of YCbCr, BT.601 as MATLAB's rgb2ycbcr, for Y-channel models); auto: from the "
                             "input channels the model takes (default auto)")
    parser.add_argument("--channels", type=int, choices=[1, 3], default=None,
                        help="the model's input channels, where the model does not tell: 1 reads gray, 3 RGB (a "
                             "shorthand for --color); a .npy image is read as its bands [C,H,W], any C")


def color_of(color: str, channels: int | None) -> str | None:
    """The ``color`` of :func:`lamfast.request.prepare_input` from --color and --channels (None: from the model)."""
    if channels is not None:
        if color not in ("auto", "rgb" if channels == 3 else "gray", "y" if channels == 1 else ""):
            raise CLIError(f"--channels {channels} and --color {color} disagree")
        if color == "auto":
            return "rgb" if channels == 3 else "gray"
    return None if color == "auto" else color


# LAMParams' fields: the flags of add_lam_arguments with these dests.
LAM_FIELDS = ("fold", "sigma", "l", "mode", "path", "baseline", "objective", "reduce")


def add_lam_arguments(parser) -> None:
    """The LAM flags with the official defaults: what defines a result, then how it runs (--batch-size, --crop)."""
    parser.add_argument("--fold", type=int, default=50, help="path steps (default 50)")
    parser.add_argument("--sigma", type=float, default=1.2, help="blur at the path start (default 1.2)")
    parser.add_argument("--l", type=int, default=9, help="odd blur kernel size (default 9)")
    parser.add_argument("--mode", choices=["compat", "robust", "official"], default="compat",
                        help="compat: official numbers; official: compat on the official code's OpenCV path, "
                             "bit for bit (needs opencv-python-headless); robust: no NaN from sqrt(0) "
                             "(default compat)")
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
    add_batch_size(parser, "path points")
    parser.add_argument("--crop", type=_crop, default="auto", metavar="auto|off|N",
                        help="auto: run the model on a crop around each window where that is exact (radius "
                             "measured on the model, checked on the image); off: always the whole image; N: "
                             "radius N in LR pixels (default auto)")


# CEMParams' fields: the flags of add_cem_arguments with these dests.
CEM_FIELDS = ("block_size", "patches", "coarse", "fine", "tol", "seed")


def add_cem_arguments(parser) -> None:
    """The CEM flags with the official defaults (what defines a causal effect map besides its ROI)."""
    parser.add_argument("--block-size", "--block_size", "--mask-block-size", "--mask_block_size", dest="block_size",
                        type=int, default=8, help="CEM block side in output pixels (default 8: 2 input px at x4)")
    parser.add_argument("--patches", "--patch-path", "--patch_path", dest="patches", default="bundled",
                        help="CEM's patch bank: a folder of patch images (read as RGB), or bundled: 8x8 patches of "
                             "the shipped photos (default bundled)")
    parser.add_argument("--coarse", "--coarse-num", "--coarse_num", dest="coarse", type=int, default=3,
                        help="CEM's coarse interventions per block (default 3)")
    parser.add_argument("--fine", "--fine-num", "--fine_num", dest="fine", type=int, default=50,
                        help="CEM's fine interventions per block whose coarse PSNR moved by --tol (default 50)")
    parser.add_argument("--tol", type=float, default=0.01,
                        help="CEM's dB threshold of the fine stage and of a zero effect (default 0.01)")
    parser.add_argument("--seed", type=int, default=0, help="seed of CEM's patch (and noise) draws (default 0)")


def cem_params(values: Mapping[str, Any]):
    """The :class:`lamfast.cem.params.CEMParams` of the CEM flags' values (``vars(args)``)."""
    from lamfast.cem.params import CEMParams

    return CEMParams(**{name: values[name] for name in CEM_FIELDS})


def add_batch_size(parser, inputs: str, default: int | None = None) -> None:
    """``--batch-size``: inputs per forward/backward pass (``inputs`` says which: path points, images)."""
    parser.add_argument("--batch-size", "--batch_size", type=int, default=default, metavar="N",
                        help=f"inputs per forward/backward pass, here {inputs}; it changes speed, never results "
                             f"(default {default if default is not None else 'from free memory'})")


def add_progress_argument(parser) -> None:
    parser.add_argument("--no-progress", "--no_progress", action="store_true", help="no progress bar")


def lam_params(values: Mapping[str, Any]):
    """The :class:`lamfast.LAMParams` of the LAM flags' values (``vars(args)``); a LAMError's ``param``
    is the flag's dest, so the CLI prints it with the flag (see :func:`lamfast.cli.flag_for`)."""
    from lamfast.lam import LAMParams

    return LAMParams(**{name: values[name] for name in LAM_FIELDS})


def load_noted(spec: str | None, *, arch: str | None = None, default: str = "bundled", label: str = "", **loader):
    """:func:`lamfast.load_model` of ``spec`` (default ``default``), every loader note printed (prefixed
    with ``label``)."""
    from lamfast.models import ModelSpec, load_model

    loaded = load_model(ModelSpec.parse(spec or default).with_arch(arch), **loader)
    for line in loaded.notes:
        note(f"{label}{line}")
    return loaded


def remove_stale(out_dir: Path, names: list[str]) -> None:
    """Remove an earlier run's ``names`` from ``out_dir``: a run that fails must not leave a folder that looks
    like its output."""
    for name in names:
        (out_dir / name).unlink(missing_ok=True)


def prepare_noted(model, source, lr_input: bool, *, clip: bool = False, bands=None, **options):
    """:func:`lamfast.request.prepare_input` (``clip``: :func:`~lamfast.request.prepare_clip`) of ``source``
    for ``model``, every note of what was converted, cropped or assumed printed; ``bands`` (the figures'
    channels of a multi-band image) checked against the image."""
    from lamfast.imageio import check_bands
    from lamfast.request import prepare_clip, prepare_input

    prepared = (prepare_clip if clip else prepare_input)(model, source, lr_input, **options)
    for line in prepared.notes:
        note(f"{prepared.name}: {line}")
    if not clip:
        check_bands(bands, prepared.tensor().shape[0])
    return prepared


__all__ = ["CLIError", "LAM_FIELDS", "add_batch_size", "add_input_arguments", "add_lam_arguments",
           "add_model_arguments", "add_output_argument", "add_progress_argument", "color_of",
           "json_object", "lam_params", "load_noted", "note", "prepare_noted", "remove_stale", "resolve_device",
           "warn"]
