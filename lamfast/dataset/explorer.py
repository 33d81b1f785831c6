"""The interactive LAM explorer: an offline page over the DI maps of one image for one or more models.

:func:`write_explorer` writes ``DIR/index.html`` (one file, style, script and data inline, so it
opens from disk with no server), ``DIR/explore.json`` (the same data) and the images it shows:
each model's SR image (``img/``) and every window's LAM figure (``maps/``), which the page loads
only when a window is opened, so a 32x32 grid stays responsive.

``lamfast explore`` (a ``grid:`` run of one image) and ``lamfast report`` (one per image of a
``grid:`` run) build it from the store's rows (:func:`explorer_from_rows`).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from lamfast.dataset.templates import inline_asset, template_env
from lamfast.errors import LamfastError



@dataclass
class ExplorerWindow:
    """One window of one model, as the page shows it.

    Attributes:
        model: the model's name; h, w, size: the window (SR pixels).
        di, gini: its LAM figures (None where it failed).
        nan_steps: path steps with NaN gradients (compat mode).
        crop: ``{"box", "radius", "reason"}``: which path ran.
        saliency: [H,W] its map at LR size (None: no figure).
        error: why it failed, or None.
    """

    model: str
    h: int
    w: int
    size: int
    di: float | None
    gini: float | None = None
    nan_steps: int | None = None
    crop: dict[str, Any] = field(default_factory=dict)
    saliency: torch.Tensor | None = None
    error: str | None = None


def explorer_windows(rows: list[dict]) -> list[ExplorerWindow]:
    """The stored rows (with maps) of one image's windows, for the page."""
    from lamfast.dataset.rows import row_saliency

    out = []
    for r in rows:
        if r["h"] < 0:
            continue  # a unit that failed before any window
        ok = r["status"] == "ok"
        crop = (json.loads(r["timings"] or "{}").get("crop") or {}) if ok else {}
        out.append(ExplorerWindow(r["model"], r["h"], r["w"], r["size"], r["di"] if ok else None, r["gini"],
                                  r["nan_steps"], crop, row_saliency(r) if ok else None, None if ok else r["error"]))
    return out


def sr_from_patches(rows: list[dict], sr_size: tuple[int, int]) -> Image.Image | None:
    """A model's SR image put back together from its windows' stored SR patches (a grid covers it
    all); None where a patch is missing."""
    from lamfast.imageio import to_pil

    canvas, seen = None, None
    for r in rows:
        patch = r.get("sr_patch")
        if r["status"] != "ok" or patch is None:
            continue
        t = torch.from_numpy(patch)
        if canvas is None:
            canvas = torch.zeros(t.shape[0], sr_size[1], sr_size[0])
            seen = torch.zeros(sr_size[1], sr_size[0], dtype=torch.bool)
        canvas[:, r["h"]:r["h"] + r["size"], r["w"]:r["w"] + r["size"]] = t
        seen[r["h"]:r["h"] + r["size"], r["w"]:r["w"] + r["size"]] = True
    if canvas is None or not bool(seen.all()):
        return None
    return to_pil(canvas)


def explorer_from_rows(out_dir: str | Path, image: str, rows: list[dict], params: dict[str, Any],
                       title: str | None = None, status: str = "") -> Path | None:
    """The explorer of one image of a ``grid:`` run, from the store's rows of every model (with maps);
    each model's DI map over its own SR image where its windows cover it. None when the image is no
    longer where the run found it. ``status``: the store's :attr:`~lamfast.dataset.store.StoreStatus.text`,
    shown on the page when the store is incomplete or being written."""
    from lamfast.dataset.rows import lr_image

    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return None
    lr = lr_image(ok[0])
    if lr is None:
        return None
    scale = ok[0]["scale"]
    sr_size = (lr.width * scale, lr.height * scale)
    backgrounds = {}
    for model in dict.fromkeys(r["model"] for r in ok):
        bg = sr_from_patches([r for r in ok if r["model"] == model], sr_size)
        if bg is not None:
            backgrounds[model] = bg
    return write_explorer(out_dir, image, lr, scale, explorer_windows(rows), backgrounds=backgrounds, params=params,
                          title=title, status=status)


def _engine_summary(windows: list[ExplorerWindow]) -> dict[str, Any]:
    """What the engine measured for one model: its reach, how many windows ran on crops, NaN steps."""
    ran = [w for w in windows if w.error is None]
    radii = sorted({w.crop.get("radius") for w in ran if w.crop.get("radius") is not None})
    whole = sorted({w.crop.get("reason", "") for w in ran if not w.crop.get("box")})
    cropped = [w for w in ran if w.crop.get("box")]
    return {"radius": radii[0] if len(radii) == 1 else radii or None,
            "reach": cropped[0].crop.get("reason") if cropped else None,
            "cropped": len(cropped), "whole": len(ran) - len(cropped), "whole_reasons": whole,
            "nan_windows": sum(1 for w in ran if w.nan_steps), "nan_steps": sum(w.nan_steps or 0 for w in ran),
            "failed": len(windows) - len(ran)}


def write_explorer(out_dir: str | Path, image: str, lr: Image.Image, scale: int, windows: list[ExplorerWindow], *,
                   backgrounds: dict[str, Image.Image] | None = None, params: dict[str, Any] | None = None,
                   title: str | None = None, status: str = "") -> Path:
    """Write the explorer of one image; returns ``DIR/index.html``.

    Args:
        out_dir: the folder (created).
        image: the image's name, shown and written to ``explore.json``.
        lr: the LR input (PIL), for the LAM figures' blends.
        scale: the SR factor; every model must share the grid (one SR size).
        windows: every window of every model (:class:`ExplorerWindow`).
        backgrounds: per model, the image its DI map is drawn over (its SR output); default the
            bicubic upscale of ``lr`` for all.
        params: the LAM parameters, shown on the page.
        status: what is missing from the results shown (a store's incomplete or running state), shown first.
    """
    from markupsafe import Markup

    from lamfast.viz import FIGURE_PANELS, window_figure

    if not windows:
        raise LamfastError("the explorer needs at least one window", param="windows")
    out = Path(out_dir)
    (out / "img").mkdir(parents=True, exist_ok=True)
    (out / "maps").mkdir(parents=True, exist_ok=True)
    models = list(dict.fromkeys(w.model for w in windows))
    rows = sorted({w.h for w in windows})
    cols = sorted({w.w for w in windows})
    sizes = sorted({w.size for w in windows})
    sr_size = (lr.width * scale, lr.height * scale)
    backgrounds = backgrounds or {}
    upscaled = lr.convert("RGB").resize(sr_size, Image.BICUBIC)
    files = {}
    for k, m in enumerate(models):
        bg = backgrounds.get(m, upscaled).convert("RGB")
        if bg.size != sr_size:
            raise LamfastError(f"model {m}'s image is {bg.width}x{bg.height}, not the grid's {sr_size[0]}x"
                               f"{sr_size[1]}: models of one explorer share one SR size", param="model")
        files[m] = f"img/sr_{k}.png"
        bg.save(out / files[m])
    records = []
    for w in windows:
        record = {"model": w.model, "h": w.h, "w": w.w, "size": w.size, "i": rows.index(w.h), "j": cols.index(w.w),
                  "di": w.di if w.di is not None and math.isfinite(w.di) else None, "gini": w.gini,
                  "nan_steps": w.nan_steps, "crop": w.crop, "error": w.error, "map": None}
        if w.saliency is not None:
            name = f"maps/{models.index(w.model)}_{record['i']}_{record['j']}_{w.size}.png"
            window_figure(w.saliency, lr, scale, (w.h, w.w, w.size), panels=FIGURE_PANELS).save(out / name)
            record["map"] = name
        records.append(record)
    data = {"image": image, "scale": scale, "models": models, "window_sizes": sizes, "rows": rows, "cols": cols,
            "sr_size": list(sr_size), "backgrounds": files, "params": params or {},
            "engine": {m: _engine_summary([w for w in windows if w.model == m]) for m in models},
            "failed": [{"model": r["model"], "h": r["h"], "w": r["w"], "error": r["error"]}
                       for r in records if r["error"]],
            "windows": records}
    (out / "explore.json").write_text(json.dumps(data, indent=1) + "\n")
    env = template_env()
    # Inline data: browsers refuse to fetch() a file:// neighbour, so the page carries its own copy.
    payload = Markup(json.dumps(data).replace("</", "<\\/"))
    page = env.get_template("explorer.html.j2").render(
        title=title or f"lamfast explorer: {Path(image).name}", data=payload, image=image, models=models, status=status,
        css=inline_asset(env, "explorer.css"), js=inline_asset(env, "explorer.js"))
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def explorer_folder(image: str, params_hash: str) -> str:
    """The report's sub-folder for one image of one ``grid:`` parameter set."""
    return "explore/" + hashlib.sha1(f"{image}|{params_hash}".encode()).hexdigest()[:12]


__all__ = ["ExplorerWindow", "explorer_folder", "explorer_from_rows", "explorer_windows", "sr_from_patches",
           "write_explorer"]
