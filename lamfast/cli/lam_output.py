"""What ``lamfast lam`` and ``lam-video`` do with the library: the LAM call with its warnings and crop note, and
the folder they write: the figures, then ``result.json``, which marks it complete."""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

# Every figure lamfast lam can write (see lamfast.viz.lam_panels).
PANELS = ("window_position", "sr", "saliency_abs", "blend_abs", "blend_kde", "grid")
# The raw maps beside the figures, in the result's dtype, for plotting them another way.
ARRAYS = ("attribution", "saliency")


@dataclass(frozen=True)
class Figures:
    """How the figures are drawn: the official tool's ``--alpha --zoomfactor --kde``, and the bands shown."""

    alpha: float
    zoom: int | None
    kde: bool
    bands: tuple[int, ...] | None = None


def lam_noted(call, what: str):
    """The one result of ``call`` (one window's ``lam_windows``), its NaN warnings and the path that ran (the
    crop, or why the whole input) printed; ``what`` names the input ("image", "clip")."""
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


def output_files(frames: int | None) -> list[str]:
    """What a run writes into its folder: an image's figures (``frames=None``) or a clip's, the raw maps
    (``attribution.npy``, ``saliency.npy``) and ``result.json``."""
    figures = PANELS if frames is None else ["frame_share", "grid", *(f"frame_{t}" for t in range(frames))]
    return [f"{name}.png" for name in figures] + [f"{name}.npy" for name in ARRAYS] + ["result.json"]


def write_lam_folder(out_dir: Path, result, prepared, window: tuple[int, int, int], figures: Figures, record: dict,
                     device, model) -> str:
    """Draw ``result`` (one window's LAMResult on ``prepared``, an image or a clip) and write the figures, the raw
    maps, then ``result.json`` (the run's settings, ``record`` first, the result's summary, the model's descriptor,
    the maps' shapes and the file list) into ``out_dir``; returns the line that says the result. ``result.json`` comes last: its presence
    marks a complete folder, and a failure removes what was written."""
    import numpy as np
    import torch

    import lamfast
    from lamfast.request import SRClip

    clip = isinstance(prepared, SRClip)
    h, w, size = window
    hr, lr = prepared.views(figures.bands) if figures.bands else prepared.views()
    record = {**record, "color": prepared.color, "alpha": figures.alpha, "zoomfactor": figures.zoom or result.scale,
              **result.summary()}
    if clip:
        from lamfast.viz_video import video_panels

        panels = video_panels(result, hr, lr, alpha=figures.alpha, zoom=figures.zoom, kde=figures.kde)
        record = {"video": [str(f) for f in prepared.files], **record}
        shares = " ".join(f"{100 * float(v):.1f}%" for v in result.frame_share)
        target = "the model's one output frame" if result.frame is None else f"output frame {result.frame}"
        what = (f"DI {result.di:.4f} over {len(prepared.files)} frames  frame share {shares}  window h={h} w={w} "
                f"size={size} on {target}")
    else:
        from lamfast.viz import lam_panels

        panels = lam_panels(result, hr, lr, alpha=figures.alpha, zoom=figures.zoom, kde=figures.kde, bands=figures.bands)
        record = {"image": record.pop("image"), "bands": list(figures.bands) if figures.bands else None, **record}
        what = f"DI {result.di:.4f}  Gini {result.gini:.6f}  window h={h} w={w} size={size}"

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for name, img in panels.items():
            target = out_dir / f"{name}.png"
            img.save(target)
            written.append(target)
        maps = {}
        for name in ARRAYS:
            array = getattr(result, name).detach().cpu().numpy()
            target = out_dir / f"{name}.npy"
            np.save(target, array)
            written.append(target)
            maps[name] = {"file": target.name, "shape": list(array.shape), "dtype": str(array.dtype)}
        maps["attribution"]["means"] = ("signed attribution per input channel and pixel (the official "
                                        "saliency_map_PG; a clip's [T,C,H,W])")
        maps["saliency"]["means"] = "|sum over channels of attribution| / its peak, in [0, 1] (grad_abs_norm)"
        record = {
            "lamfast_version": lamfast.__version__,
            "torch_version": str(torch.__version__),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "extension": lamfast.ext_available(),
            "model": model.summary(),
            **record,
            "maps": maps,
            "files": [p.name for p in written] + ["result.json"],
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (out_dir / "result.json").write_text(json.dumps(record, indent=2) + "\n")
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    return f"{what}{convergence(result)}  scale x{result.scale}  {result.timings['total']:.2f}s  -> {out_dir}/"


def convergence(result) -> str:
    """How converged the result's DI is, as the line shows it: the fold/2 DI and the completeness ratio."""
    half = f"  fold/2 DI {result.di_fold_half:.4f}" if result.di_fold_half is not None else ""
    whole = f"  completeness {result.completeness:.3f}" if result.completeness is not None else ""
    return half + whole
