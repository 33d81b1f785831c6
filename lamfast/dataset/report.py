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

Then the causal effect maps of ``run --method cem`` (:mod:`lamfast.dataset.cem_report`), every
window (filter and pages, for thousands of rows) and the failures.
Every table sorts on a header click. Every name from the store is
HTML-escaped. The report is self-contained: one index.html plus PNGs under
img/, no network.
"""
from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lamfast.dataset.rows import lr_image, row_saliency, row_views
from lamfast.dataset.stats import (BOOTSTRAP, discretisation_error, model_summary, not_paired, paired,
                                   paired_error, paired_images, paired_sizes)
from lamfast.dataset.store import ResultStore
from lamfast.dataset.templates import inline_asset, template_env
from lamfast.quality import CONVENTION as QUALITY_CONVENTION

from lamfast.errors import LamfastError
from lamfast.outputs import check_output_dir
from lamfast.dataset.words import params_in_words
from lamfast.viz import COLOUR_BAR_TICKS, colour_bar  # noqa: F401 (the report's bar; tests read the ticks here)

FIGURE_WINDOWS = 6
GALLERY_WINDOWS = 8
PAGE_ROWS = 100

# The page's template, script and style live beside this module (Jinja2 autoescapes the template).


def nice_ticks(lo: float, hi: float, n: int = 5) -> tuple[list[float], str]:
    """About ``n`` round ticks inside [lo, hi] (steps of 1, 2, 2.5 or 5 times a power of ten) and the
    format that shows them without noise.

    Example:
        >>> from lamfast.dataset.report import nice_ticks
        >>> nice_ticks(11.9, 20.7)
        ([12.0, 14.0, 16.0, 18.0, 20.0], '{:.0f}')
        >>> nice_ticks(0.61, 0.66)
        ([0.61, 0.62, 0.63, 0.64, 0.65, 0.66], '{:.2f}')
    """
    span = hi - lo
    if not span > 0:
        return [lo], "{:g}"
    power = 10.0 ** math.floor(math.log10(span / max(n - 1, 1)))

    def ticks_of(step: float) -> list[float]:
        first = math.ceil(lo / step - 1e-9) * step
        return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]

    # the step whose tick count is nearest n (the larger step on a tie)
    steps = [m * power for m in (0.5, 1, 2, 2.5, 5, 10, 20)]
    step = min(steps, key=lambda s: (abs(len(ticks_of(s)) - n), -s))
    mantissa = step / 10.0 ** math.floor(math.log10(step) + 1e-9)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9) + (1 if abs(mantissa - 2.5) < 1e-9 else 0))
    return ticks_of(step), f"{{:.{decimals}f}}"


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
    ticks, fmt = nice_ticks(lo, hi)
    xticks = [{"x": left + (t - lo) / (hi - lo) * plot_w, "value": t, "text": fmt.format(t)} for t in ticks]
    counts_ticks = [v for v in nice_ticks(0, peak, 4)[0] if float(v).is_integer()] or [0, peak]
    yticks = [{"y": top + plot_h - v / peak * plot_h + 3, "value": int(v)} for v in counts_ticks]
    return {"w": w, "h": h, "left": left, "top": top, "plot_w": plot_w, "axis_y": top + plot_h, "title": title,
            "bars": bars, "xticks": xticks, "yticks": yticks}


def _finite_mean(values: list) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(kept) if kept else None


def _image_quality(rows: list[dict]) -> dict[str, tuple[float | None, float | None]]:
    """image -> (PSNR, SSIM) of the model's SR output on it: one value per image, whatever its windows."""
    return {r["image"]: (r.get("psnr"), r.get("ssim")) for r in rows}


def _per_image(by_model: dict[str, list[dict]], models: list[str]) -> list[dict]:
    """One row per image: per model the LR size it saw (models of other scales see other sizes), the mean
    DI of its windows, PSNR and SSIM."""
    images = sorted({r["image"] for rows in by_model.values() for r in rows})
    out = []
    for image in images:
        cells, size = [], None
        for m in models:
            rows = [r for r in by_model[m] if r["image"] == image]
            size = size or next((r.get("lr_size") for r in rows if r.get("lr_size")), None)
            psnr, ssim = _image_quality(rows).get(image, (None, None))
            own = next((r.get("lr_size") for r in rows if r.get("lr_size")), None)
            cells.append({"di": _finite_mean([r["di"] for r in rows]), "psnr": psnr, "ssim": ssim, "n": len(rows),
                          "lr_size": own or "—"})
        out.append({"name": Path(image).name, "image": image, "lr_size": size or "—", "cells": cells})
    return out


def _size_key(size: str) -> tuple:
    """LR sizes ("HxW") in order of pixels, then by text; unknown sizes last."""
    try:
        h, w = (int(v) for v in size.split("x"))
        return (0, h * w, size)
    except (AttributeError, ValueError):
        return (1, 0, str(size))


def _per_size(by_model: dict[str, list[dict]], models: list[str]) -> list[dict]:
    """DI per model for each LR size on its own (DI depends on the size): one row per size, smallest first,
    with its images and per model its windows, mean DI and bootstrap CI."""
    sizes = sorted({r.get("lr_size") or "unknown" for rows in by_model.values() for r in rows}, key=_size_key)
    out = []
    for size in sizes:
        cells, images = [], set()
        for m in models:
            dis = [r["di"] for r in by_model[m] if (r.get("lr_size") or "unknown") == size]
            images |= {r["image"] for r in by_model[m] if (r.get("lr_size") or "unknown") == size}
            cells.append(model_summary(dis) if dis else None)
        out.append({"size": size, "images": len(images), "cells": cells})
    return out


def _scatter(points: list[dict]) -> dict | None:
    """The LAM paper's figure: mean DI against mean PSNR, one point per model with its DI's 95% CI as an
    error bar (None without PSNR)."""
    pts = [p for p in points if p["psnr"] is not None]
    if not pts:
        return None
    w, h, left, bottom, top, right = 420, 260, 48, 38, 14, 90
    plot_w, plot_h = w - left - right, h - top - bottom
    xs = [p["psnr"] for p in pts]
    ys = [v for p in pts for v in (p["di"], p.get("ci_low", p["di"]), p.get("ci_high", p["di"])) if math.isfinite(v)]
    pad = lambda lo, hi: (lo - 0.5, hi + 0.5) if hi - lo < 1e-9 else (lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))  # noqa: E731
    (x0, x1), (y0, y1) = pad(min(xs), max(xs)), pad(min(ys), max(ys))
    fx = lambda v: left + (v - x0) / (x1 - x0) * plot_w  # noqa: E731
    fy = lambda v: top + plot_h - (v - y0) / (y1 - y0) * plot_h  # noqa: E731
    (xt, xf), (yt, yf) = nice_ticks(x0, x1), nice_ticks(y0, y1)
    bar = lambda p, k: fy(p[k]) if math.isfinite(p.get(k, math.nan)) else fy(p["di"])  # noqa: E731
    return {"w": w, "h": h, "left": left, "top": top, "plot_w": plot_w, "plot_h": plot_h, "axis_y": top + plot_h,
            "points": [{**p, "x": fx(p["psnr"]), "y": fy(p["di"]), "y_low": bar(p, "ci_low"),
                        "y_high": bar(p, "ci_high")} for p in pts],
            "xticks": [{"x": fx(t), "value": t, "text": xf.format(t)} for t in xt],
            "yticks": [{"y": fy(t), "value": t, "text": yf.format(t)} for t in yt]}


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


def _blend_png(row: dict, out_dir: Path, zoom_to: int = 192) -> str | None:
    """The abs-saliency blend over the upsampled LR, zoomed around the window (boxed); returns the file name."""
    from lamfast.viz import window_figure

    lr = lr_image(row)
    if lr is None:
        return None
    panel = window_figure(row_saliency(row), lr, row["scale"], (row["h"], row["w"], row["size"]), zoom_to,
                          panels=("blend",))
    return _png(panel, out_dir, "blend|" + row["key"])


def _patch(image: Image.Image, h: int, w: int, size: int, zoom_to: int) -> Image.Image:
    return image.convert("RGB").crop((w, h, w + size, h + size)).resize((zoom_to, zoom_to), Image.NEAREST)


def _hr_patch_png(row: dict, out_dir: Path, zoom_to: int = 160) -> str | None:
    """The HR image in the window (its ground truth), zoomed; None when the image is gone or LR-only."""
    views = row_views(row)
    if views is None or json.loads(row["params"]).get("lr_input"):
        return None
    return _png(_patch(views[0], row["h"], row["w"], row["size"], zoom_to), out_dir, "hr|" + row["key"])


def _figure_cell(row: dict, out_dir: Path, zoom_to: int = 160) -> str | None:
    """The LAM-paper cell: the model's SR output in the window, then crops around the window of the
    LAM blend and of the KDE blend. Rows of older stores have no SR patch: the maps alone."""
    from lamfast.imageio import to_pil
    from lamfast.viz import window_figure

    lr = lr_image(row)
    if lr is None:
        return None
    figure = window_figure(row_saliency(row), lr, row["scale"], (row["h"], row["w"], row["size"]), zoom_to)
    patch = row.get("sr_patch")
    if patch is None:
        return _png(figure, out_dir, "cell|" + row["key"])
    sr = to_pil(torch.from_numpy(patch)).resize((zoom_to, zoom_to), Image.NEAREST)
    cell = Image.new("RGB", (zoom_to + 3 + figure.width, zoom_to), "white")
    cell.paste(sr, (0, 0))
    cell.paste(figure, (zoom_to + 3, 0))
    return _png(cell, out_dir, "cell|" + row["key"])


def _explorers(gid: str, params: dict, ok: list[dict], failed: list[dict], out_dir: Path,
               status: str = "") -> dict[str, str]:
    """For a ``grid:`` parameter set, an explorer page per image (its models' DI maps); image -> its page."""
    from lamfast.dataset.explorer import explorer_folder, explorer_from_rows

    if not str(params.get("windows", "")).startswith("grid:"):
        return {}
    pages = {}
    for image in sorted({r["image"] for r in ok if not r.get("video")}):
        folder = explorer_folder(image, gid)
        if explorer_from_rows(out_dir / folder, image, [r for r in ok + failed if r["image"] == image],
                              params, status=status) is not None:
            pages[image] = f"{folder}/index.html"
    return pages


# A paired difference smaller than this many times the discretisation error |DI - DI at fold/2| is
# flagged: the Riemann sum's own error could make or unmake it.
ERROR_MARGIN = 2.0


def _pair(a: str, b: str, rows_a: list[dict], rows_b: list[dict]) -> dict:
    """Model A against B for the template: over windows and images of one LR size, why any shared windows
    were not compared, and whether the fold's discretisation error is large against the difference."""
    stats, error = paired(rows_a, rows_b), paired_error(rows_a, rows_b)
    warn = None
    if stats is not None and error is not None and abs(stats["mean_diff"]) < ERROR_MARGIN * error:
        warn = (f"the mean difference {stats['mean_diff']:+.4f} is less than {ERROR_MARGIN:g}x the discretisation "
                f"error |DI - DI at fold/2| ({error:.4f}): rerun at a larger fold before reading it")
    return {"a": a, "b": b, "stats": stats, "images": paired_images(rows_a, rows_b),
            "lr_sizes": ", ".join(paired_sizes(rows_a, rows_b)) or "—",
            "not_paired": not_paired(rows_a, rows_b), "error": error, "warn": warn}


def _section(gid: str, params: dict, ok: list[dict], img_dir: Path, explorers: dict[str, str] | None = None) -> dict:
    """One parameter set's tables and figures, for the template (``explorers``: image -> its explorer page)."""
    explorers = explorers or {}
    by_model: dict[str, list[dict]] = defaultdict(list)
    for r in ok:
        by_model[r["model"]].append(r)
    models = sorted(by_model)
    section = {"gid": gid, "params": sorted(params.items()), "n_windows": len(ok),
               "params_text": ", ".join(f"{k}={v}" for k, v in sorted(params.items())),
               "n_images": len({r["image"] for r in ok}),
               "params_words": params_in_words(params),
               "models": [{"name": m, "st": model_summary([r["di"] for r in by_model[m]]),
                           "lr_sizes": ", ".join(sorted({r["lr_size"] for r in by_model[m] if r.get("lr_size")},
                                                        key=_size_key)) or "—",
                           "di_error": discretisation_error(by_model[m]),
                           "completeness": _finite_mean([r.get("completeness") for r in by_model[m]]),
                           "psnr": _finite_mean([q[0] for q in _image_quality(by_model[m]).values()]),
                           "ssim": _finite_mean([q[1] for q in _image_quality(by_model[m]).values()])}
                          for m in models],
               "per_image": _per_image(by_model, models),
               "lr_sizes": sorted({r["lr_size"] for r in ok if r.get("lr_size")}, key=_size_key),
               "per_size": _per_size(by_model, models),
               "quality_convention": QUALITY_CONVENTION,
               "pairs": [_pair(a, b, by_model[a], by_model[b]) for a, b in combinations(models, 2)],
               "frame_shares": _frame_shares(by_model),
               "explorers": [{"image": Path(image).name, "href": href} for image, href in sorted(explorers.items())]}

    all_di = [r["di"] for r in ok]
    lo, hi = min(all_di), max(all_di)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    bins = 20
    peak = max(int(np.histogram([r["di"] for r in by_model[m]], bins=bins, range=(lo, hi))[0].max()) for m in models)
    section["scatter"] = _scatter([{"name": m["name"], "psnr": m["psnr"], "di": m["st"]["mean"],
                                    "ci_low": m["st"]["ci_low"], "ci_high": m["st"]["ci_high"]}
                                   for m in section["models"]])
    # for the paper outputs (lamfast.dataset.paper): the values the histograms bin, on their axis
    section["di_values"] = {m: [r["di"] for r in by_model[m]] for m in models}
    section["di_range"] = (lo, hi)
    section["histograms"] = [_histogram([r["di"] for r in by_model[m]], m, lo, hi, max(peak, 1), bins) for m in models]

    keys = defaultdict(dict)
    for r in ok:
        keys[(r["image"], r["h"], r["w"], r["size"])][r["model"]] = r
    shared = [(k, v) for k, v in keys.items() if len(v) == len(models)]
    # Windows where every model saw an LR input of one size, those where the models disagree most first;
    # where the models have other scales there are none, and the figure shows windows by name, saying so.
    same_size = [(k, v) for k, v in shared if len({r.get("lr_size") for r in v.values()}) == 1]
    section["figure_mixed_sizes"] = bool(shared) and not same_size
    if same_size:
        shared = sorted(same_size, key=lambda kv: (-(max(r["di"] for r in kv[1].values())
                                                     - min(r["di"] for r in kv[1].values())), kv[0]))
    else:
        shared.sort(key=lambda kv: kv[0])
    section["figure"] = [
        {"image": Path(image).name, "h": h, "w": w, "size": size, "hr": _hr_patch_png(per_model[models[0]], img_dir),
         "cells": [{"model": m, "png": _figure_cell(per_model[m], img_dir), "di": per_model[m]["di"],
                    "psnr": per_model[m].get("psnr"), "sr": per_model[m].get("sr_patch") is not None}
                   for m in models]}
        for (image, h, w, size), per_model in shared[:FIGURE_WINDOWS]]

    section["galleries"] = []
    for m in models:
        rows = sorted(by_model[m], key=lambda r: (r["di"], r["key"]))
        kinds = []
        for kind, chosen in (("high", rows[::-1][:GALLERY_WINDOWS]), ("low", rows[:GALLERY_WINDOWS])):
            figures = [{"png": png, "image": Path(r["image"]).name, "h": r["h"], "w": r["w"], "di": r["di"],
                        "href": f"{explorers[r['image']]}#h={r['h']}&w={r['w']}" if r["image"] in explorers else None}
                       for r in chosen if (png := _blend_png(r, img_dir))]
            kinds.append((kind, figures))
        section["galleries"].append({"model": m, "radio": f"g-{gid}-{hashlib.sha1(m.encode()).hexdigest()[:8]}",
                                     "kinds": kinds})
    return section


def write_report(store: str | Path, out_dir: str | Path, formats: str | tuple[str, ...] = ("html",)) -> Path:
    """Write ``out_dir/index.html`` (and ``img/``) for a store; returns the HTML path.

    Args:
        formats: besides the HTML page (always written), any of ``"pdf"``, ``"svg"`` (the figures,
            under ``figures/``; needs matplotlib) and ``"tex"`` (the DI tables as LaTeX booktabs,
            under ``tables/``), as a list or ``"html,pdf,svg,tex"``; see :mod:`lamfast.dataset.paper`.

    Example:
        >>> import os, tempfile
        >>> from lamfast import LAMParams
        >>> from lamfast.dataset import RunConfig, run, write_report
        >>> store = os.path.join(tempfile.mkdtemp(), "s.sqlite")
        >>> run(["bundled"], ["bundled"], store, RunConfig(windows="grid:32", lam=LAMParams(fold=2)), progress=False).windows_done
        64
        >>> page = write_report(store, os.path.join(os.path.dirname(store), "report"))
        >>> page.name, (page.parent / "img").is_dir()
        ('index.html', True)
    """
    from lamfast.dataset.paper import parse_formats, write_paper_outputs

    formats = parse_formats(formats)
    if not Path(store).is_file():
        raise LamfastError(f"store not found: {store}", param="store")
    out_dir = check_output_dir(out_dir)
    img_dir = out_dir / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    from lamfast.dataset.cem_report import cem_sets

    with ResultStore(store) as db:
        rows = list(db.rows(with_maps=True))
        cem_rows = list(db.rows(method="cem"))
        models = db.models()
        status = db.status().text
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows + cem_rows if r["status"] != "ok"]
    rows = rows + cem_rows  # the counts of images and models in the heading
    groups: dict[str, list[dict]] = defaultdict(list)
    params: dict[str, dict] = {}
    for r in ok:
        groups[r["params_hash"]].append(r)
        params[r["params_hash"]] = json.loads(r["params"])
    colour_bar(160).save(img_dir / "colour_bar.png")
    sections = [_section(gid, params[gid], groups[gid], img_dir,
                         _explorers(gid, params[gid], groups[gid], [r for r in failed if r["params_hash"] == gid],
                                    out_dir, status)) for gid in sorted(groups)]
    for s in sections:
        s["status"] = status  # the LaTeX captions say it too
    extras = write_paper_outputs(sections, out_dir, img_dir, formats)
    env = template_env()
    page = env.get_template("report.html.j2").render(
        store=str(store), status=status, n_ok=len(ok), n_failed=len(failed), n_images=len({r["image"] for r in rows}),
        n_models=len({r["model"] for r in rows}), bootstrap=BOOTSTRAP, page_rows=PAGE_ROWS,
        sections=sections, cem_sets=cem_sets(cem_rows), cem_rois=sum(r["status"] == "ok" for r in cem_rows),
        paper_files=[p.relative_to(out_dir).as_posix() for p in extras],
        windows=[{**r, "name": Path(r["image"]).name} for r in ok],
        models=[{"label": m, "file": Path(info["spec"]).name, **info} for m, info in sorted(models.items())
                if any(r["model"] == m for r in rows)],
        failures=[{"image": Path(r["image"]).name, "model": r["model"], "error": r["error"],
                   "window": "—" if r["h"] < 0 else f"{r['h']},{r['w']},{r['size']}"} for r in failed],
        # the page is one self-contained file: style and script go inline
        css=inline_asset(env, "report.css"), js=inline_asset(env, "report.js"))
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
