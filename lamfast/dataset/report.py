"""``lamfast report STORE -o DIR``: an HTML report that compares networks.

One section per parameter set (results of different LAM parameters are
never pooled), each with:

- the parameters;
- DI per model: windows, mean, median, std, and a bootstrap 95% CI of the mean;
- a paired comparison of every two models over the windows both have (the
  same image and window): the mean DI difference with its bootstrap 95% CI,
  and the share of windows where each model's DI is the higher;
- DI histograms on one shared axis, with ticks;
- the LAM-paper figure: rows of windows, one column per model, each cell a
  zoomed crop around the window with the LAM map, the KDE map, a colour bar
  and its DI;
- galleries of the highest or the lowest DI per model.

Then every window (filter and pages, for thousands of rows) and the failures.
Every table sorts on a header click. Every name from the store is
HTML-escaped. The report is self-contained: one index.html plus PNGs under
img/, no network.
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lamfast.dataset.stats import BOOTSTRAP, model_summary, paired
from lamfast.dataset.store import ResultStore

from lamfast.errors import LamfastError

FIGURE_WINDOWS = 6
GALLERY_WINDOWS = 8
PAGE_ROWS = 100

# The page's template, script and style live beside this module (Jinja2 autoescapes the template).
ASSETS = "report_assets"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def _histogram(values: list[float], title: str, lo: float, hi: float, peak: int, bins: int = 20) -> dict:
    """What the template draws of a DI histogram on the shared axis [lo, hi] and count scale ``peak``."""
    counts, _ = np.histogram(values, bins=bins, range=(lo, hi))
    w, h, left, bottom, top = 380, 170, 34, 34, 20
    plot_w, plot_h = w - left - 10, h - top - bottom
    bar_w = plot_w / bins
    edges = np.linspace(lo, hi, bins + 1)
    bars = [{"x": left + i * bar_w, "y": top + plot_h - (c / peak) * plot_h, "width": max(bar_w - 1, 0.5),
             "height": (c / peak) * plot_h, "lo": edges[i], "hi": edges[i + 1], "count": int(c)}
            for i, c in enumerate(counts)]
    xticks = [{"x": left + (t - lo) / (hi - lo) * plot_w, "value": t} for t in _ticks(lo, hi)]
    yticks = [{"y": top + plot_h - v / peak * plot_h + 3, "value": v} for v in sorted({0, peak // 2, peak})]
    return {"w": w, "h": h, "left": left, "top": top, "plot_w": plot_w, "axis_y": top + plot_h, "title": title,
            "bars": bars, "xticks": xticks, "yticks": yticks}


def _shown_frame(row: dict) -> int | None:
    """For a clip's row, the input frame the figures draw: the one with the largest share; None for an image."""
    if not row.get("video"):
        return None
    shares = json.loads(row["video"])["frame_share"]
    return max(range(len(shares)), key=lambda t: (shares[t], -t))


def _lr_image(row: dict) -> Image.Image | None:
    """The row's LR input (a clip's shown frame), made as the run made it (None when it is no longer there)."""
    from lamfast.request import prepare_clip, prepare_input

    params = json.loads(row["params"])
    frame = _shown_frame(row)
    # the model's channels: the run's color, else 1 band (gray) or RGB, as the attribution has them
    channels = row["attribution"].shape[0 if frame is None else 1]
    color = params.get("color") or ("bands" if str(row["image"]).lower().endswith(".npy")
                                    else "gray" if channels == 1 else "rgb")
    try:
        if frame is not None:
            return prepare_clip(None, row["image"], params.get("lr_input", False), scale=row["scale"],
                                color=color).views()[1][frame]
        return prepare_input(None, row["image"], params.get("lr_input", False), scale=row["scale"],
                             color=color).views()[1]
    except ValueError:
        return None


def _saliency(row: dict) -> torch.Tensor:
    """The row's saliency [H,W]; for a clip, its shown frame on the clip's joint scale."""
    frame = _shown_frame(row)
    attribution = torch.from_numpy(row["attribution"])
    grad = (attribution.sum(0) if frame is None else attribution.sum(1)).abs()
    grad = grad / grad.max().clamp_min(1e-30)
    return grad if frame is None else grad[frame]


def _frame_shares(by_model: dict[str, list[dict]]) -> list[dict]:
    """Per model of clips: windows, mean DI per frame and mean frame share per input frame (clips of one length)."""
    out = []
    for m in sorted(by_model):
        videos = [json.loads(r["video"]) for r in by_model[m] if r.get("video")]
        lengths = {len(v["frame_share"]) for v in videos}
        if len(lengths) != 1:
            continue
        out.append({"model": m, "n": len(videos), "frames": lengths.pop(),
                    "share": np.mean([v["frame_share"] for v in videos], axis=0).tolist(),
                    "di_per_frame": np.mean([v["di_per_frame"] for v in videos], axis=0).tolist()})
    return out


def _png(image: Image.Image, out_dir: Path, key: str) -> str:
    name = hashlib.sha1(key.encode()).hexdigest()[:16] + ".png"
    image.save(out_dir / name)
    return name


def _window_crop(image: Image.Image, h: int, w: int, size: int, zoom_to: int) -> Image.Image:
    """A square around the window (4 window sides, at least 48 px), zoomed to ``zoom_to`` px."""
    side = min(max(4 * size, 48), image.width, image.height)
    top = min(max(0, h + size // 2 - side // 2), image.height - side)
    left = min(max(0, w + size // 2 - side // 2), image.width - side)
    return image.crop((left, top, left + side, top + side)).resize((zoom_to, zoom_to), Image.NEAREST)


def _blend_png(row: dict, out_dir: Path, zoom_to: int = 192) -> str | None:
    """The abs-saliency blend over the upsampled LR, zoomed around the window (boxed); returns the file name."""
    from lamfast import viz

    lr = _lr_image(row)
    if lr is None:
        return None
    panel = viz.window_image(viz.blend(viz.saliency_image(_saliency(row), row["scale"]), lr, 0.5),
                             row["h"], row["w"], row["size"])
    return _png(_window_crop(panel, row["h"], row["w"], row["size"], zoom_to), out_dir, "blend|" + row["key"])


def _colour_bar(height: int) -> Image.Image:
    from lamfast import viz

    values = torch.linspace(1.0, 0.0, height)[:, None].expand(height, 10)
    return Image.fromarray(viz.seismic(0.5 + 0.5 * values))


def _figure_cell(row: dict, out_dir: Path, zoom_to: int = 160) -> str | None:
    """The LAM-paper cell: a crop around the window of the LAM blend and of the KDE blend, and a colour bar."""
    from lamfast import viz

    lr = _lr_image(row)
    if lr is None:
        return None
    s, h, w, size = row["scale"], row["h"], row["w"], row["size"]
    saliency = _saliency(row)
    lam = viz.window_image(viz.blend(viz.saliency_image(saliency, s), lr, 0.5), h, w, size)
    kde = viz.window_image(viz.blend(viz.kde_image(saliency, s), lr, 0.5), h, w, size)
    crops = [_window_crop(im, h, w, size, zoom_to) for im in (lam, kde)]
    bar = _colour_bar(zoom_to)
    cell = Image.new("RGB", (2 * zoom_to + 6 + bar.width, zoom_to), "white")
    cell.paste(crops[0], (0, 0))
    cell.paste(crops[1], (zoom_to + 3, 0))
    cell.paste(bar, (2 * zoom_to + 6, 0))
    return _png(cell, out_dir, "cell|" + row["key"])


def _section(gid: str, params: dict, ok: list[dict], img_dir: Path) -> dict:
    """One parameter set's tables and figures, for the template."""
    by_model: dict[str, list[dict]] = defaultdict(list)
    for r in ok:
        by_model[r["model"]].append(r)
    models = sorted(by_model)
    section = {"gid": gid, "params": sorted(params.items()), "n_windows": len(ok),
               "params_text": ", ".join(f"{k}={v}" for k, v in sorted(params.items())),
               "n_images": len({r["image"] for r in ok}),
               "models": [{"name": m, "st": model_summary([r["di"] for r in by_model[m]])} for m in models],
               "pairs": [{"a": a, "b": b, "stats": paired(by_model[a], by_model[b])}
                         for a, b in combinations(models, 2)],
               "frame_shares": _frame_shares(by_model)}

    all_di = [r["di"] for r in ok]
    lo, hi = min(all_di), max(all_di)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    bins = 20
    peak = max(int(np.histogram([r["di"] for r in by_model[m]], bins=bins, range=(lo, hi))[0].max()) for m in models)
    section["histograms"] = [_histogram([r["di"] for r in by_model[m]], m, lo, hi, max(peak, 1), bins) for m in models]

    keys = defaultdict(dict)
    for r in ok:
        keys[(r["image"], r["h"], r["w"], r["size"])][r["model"]] = r
    shared = [(k, v) for k, v in keys.items() if len(v) == len(models)]
    # the windows where the models disagree most, then by name for a stable order
    shared.sort(key=lambda kv: (-(max(r["di"] for r in kv[1].values()) - min(r["di"] for r in kv[1].values())),
                                kv[0]))
    section["figure"] = [
        {"image": Path(image).name, "h": h, "w": w, "size": size,
         "cells": [{"model": m, "png": _figure_cell(per_model[m], img_dir), "di": per_model[m]["di"]} for m in models]}
        for (image, h, w, size), per_model in shared[:FIGURE_WINDOWS]]

    section["galleries"] = []
    for m in models:
        rows = sorted(by_model[m], key=lambda r: (r["di"], r["key"]))
        kinds = []
        for kind, chosen in (("high", rows[::-1][:GALLERY_WINDOWS]), ("low", rows[:GALLERY_WINDOWS])):
            figures = [{"png": png, "image": Path(r["image"]).name, "h": r["h"], "w": r["w"], "di": r["di"]}
                       for r in chosen if (png := _blend_png(r, img_dir))]
            kinds.append((kind, figures))
        section["galleries"].append({"model": m, "radio": f"g-{gid}-{hashlib.sha1(m.encode()).hexdigest()[:8]}",
                                     "kinds": kinds})
    return section


def _template():
    import math

    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("lamfast.dataset", ASSETS), autoescape=select_autoescape(["j2"]),
                      keep_trailing_newline=True)
    env.tests["finite"] = lambda v: math.isfinite(v)
    return env


def write_report(store: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir/index.html`` (and ``img/``) for a store; returns the HTML path."""
    from markupsafe import Markup

    if not Path(store).is_file():
        raise LamfastError(f"store not found: {store}", param="store")
    out_dir = Path(out_dir)
    img_dir = out_dir / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    with ResultStore(store) as db:
        rows = list(db.rows(with_maps=True))
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] != "ok"]
    groups: dict[str, list[dict]] = defaultdict(list)
    params: dict[str, dict] = {}
    for r in ok:
        groups[r["params_hash"]].append(r)
        params[r["params_hash"]] = json.loads(r["params"])
    env = _template()
    loader = env.loader
    page = env.get_template("report.html.j2").render(
        store=str(store), n_ok=len(ok), n_failed=len(failed), n_images=len({r["image"] for r in rows}),
        n_models=len({r["model"] for r in rows}), bootstrap=BOOTSTRAP, page_rows=PAGE_ROWS,
        sections=[_section(gid, params[gid], groups[gid], img_dir) for gid in sorted(groups)],
        windows=[{**r, "name": Path(r["image"]).name} for r in ok],
        failures=[{"image": Path(r["image"]).name, "model": r["model"], "error": r["error"],
                   "window": "—" if r["h"] < 0 else f"{r['h']},{r['w']},{r['size']}"} for r in failed],
        # the page is one self-contained file: style and script go inline
        css=Markup(loader.get_source(env, "report.css")[0]), js=Markup(loader.get_source(env, "report.js")[0]))
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
