"""What ``lamfast lam`` shares between images and clips: the figure flags' checks, the model, the
LAM call with its warnings and crop note, and an output folder whose ``result.json`` marks it complete."""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Callable


def check_figure_flags(args: argparse.Namespace, params) -> Path:
    """Refuse bad output and figure flags before any model work; returns the output folder."""
    from lamfast.cli.common import CLIError, check_output_dir
    from lamfast.lam.official_path import require_opencv

    out_dir = Path(args.output_dir)
    check_output_dir(out_dir, "--output-dir")
    if params.mode == "official":
        require_opencv()  # its error names param "mode": printed as --mode
    if args.window_size < 2:
        raise CLIError(f"--window-size must be >= 2, got {args.window_size}")
    if not 0.0 <= args.alpha <= 1.0:
        raise CLIError(f"--alpha must be in [0, 1], got {args.alpha}")
    if args.zoomfactor is not None and args.zoomfactor < 1:
        raise CLIError(f"--zoomfactor must be >= 1, got {args.zoomfactor}")
    return out_dir


def load_model(spec, args: argparse.Namespace, device, arch_kwargs: dict):
    """The model of ``spec`` as the flags ask, its loader's notes printed."""
    from lamfast.cli.common import note

    loaded = spec.load(device=device, unsafe_pickle=args.unsafe_pickle, rgb_range=args.rgb_range,
                       arch_kwargs=arch_kwargs)
    for line in loaded.notes:
        note(line)
    return loaded


def run_lam(call: Callable[[], list], what: str):
    """The one result of ``call`` (a ``lam_windows``-style call), its NaN warnings and the path that
    ran said on stderr; ``what`` names the input in the note ("image", "clip")."""
    from lamfast.cli.common import note, warn
    from lamfast.lam import LAMNaNWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LAMNaNWarning)
        (result,) = call()
    for w in caught:
        if issubclass(w.category, LAMNaNWarning):
            warn(str(w.message))
    crop = result.crop
    if crop.box is not None:
        t, left, b, r = crop.box
        every = " of every frame" if what == "clip" else ""
        note(f"ran on the LR crop rows {t}:{b}, columns {left}:{r}{every} (radius {crop.radius}; {crop.reason})")
    else:
        note(f"ran on the whole {what}: {crop.reason}")
    return result


def remove_stale(out_dir: Path, names) -> None:
    """A failed run must not leave an earlier run's files looking like its output."""
    for name in ["result.json", *names]:
        (out_dir / name).unlink(missing_ok=True)


def write_outputs(out_dir: Path, panels: dict, summary: dict, args: argparse.Namespace, device, loaded,
                  arch_kwargs: dict) -> None:
    """The figures as PNGs, then ``result.json`` (the run's settings, ``summary`` and the file list)
    last: its presence marks a complete folder. A failure removes what was written."""
    import torch

    import lamfast

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for name, img in panels.items():
            target = out_dir / f"{name}.png"
            img.save(target)
            written.append(target)
        record = {
            "arch_kwargs": arch_kwargs,
            "lamfast_version": lamfast.__version__,
            "torch_version": str(torch.__version__),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "extension": lamfast.ext_available(),
            "model": {"arch": loaded.arch, "source": loaded.source, "notes": loaded.notes},
            **summary,
            "files": [p.name for p in written] + ["result.json"],
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (out_dir / "result.json").write_text(json.dumps(record, indent=2) + "\n")
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
