"""What ``lamfast lam`` and ``lam-video`` share: the LAM call with its warnings and crop note, and an
output folder whose ``result.json`` marks it complete."""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Callable


def run_lam(call: Callable[[], list], what: str):
    """The one result of ``call`` (a ``lam_windows`` call), its NaN warnings and the path that ran said
    on stderr; ``what`` names the input in the note ("image", "clip")."""
    from lamfast.cli.common import note, warn
    from lamfast.errors import LAMNaNWarning

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
        (out_dir / (name if name.endswith((".png", ".json")) else f"{name}.png")).unlink(missing_ok=True)


def write_outputs(out_dir: Path, panels: dict, summary: dict, device, model) -> None:
    """The figures as PNGs, then ``result.json`` (the run's settings, ``summary``, the model's
    descriptor and the file list) last: its presence marks a complete folder. A failure removes what
    was written."""
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
            "lamfast_version": lamfast.__version__,
            "torch_version": str(torch.__version__),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "extension": lamfast.ext_available(),
            "model": model.summary(),
            **summary,
            "files": [p.name for p in written] + ["result.json"],
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (out_dir / "result.json").write_text(json.dumps(record, indent=2) + "\n")
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
