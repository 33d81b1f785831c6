"""``lamfast report STORE -o DIR``: an HTML report of a results store.

Per-model DI summary (mean, median, count) and histogram, a per-image
gallery of LAM blends, and the failures. Tables sort on a header click;
every name from the store is HTML-escaped. Self-contained: one index.html
plus PNGs under img/, no network.
"""
from __future__ import annotations

import hashlib
import html
import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from lamfast.dataset.store import ResultStore

GALLERY_WINDOWS = 8
_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var asc = th.dataset.order !== 'asc'; th.dataset.order = asc ? 'asc' : 'desc';
    var rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v || a.cells[col].textContent, y = b.cells[col].dataset.v || b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""
_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 24px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#eee;cursor:pointer}td.name,th.name{text-align:left}
.gallery{display:flex;flex-wrap:wrap;gap:8px}.gallery figure{margin:0;font-size:12px}
.gallery img{width:192px;height:auto;image-rendering:pixelated;border:1px solid #999}
.hist{margin:4px 24px 16px 0;display:inline-block}
"""


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _histogram_svg(values: list[float], title: str, bins: int = 20) -> str:
    if not values:
        return ""
    top = max(max(values), 1e-9)
    counts, edges = np.histogram(values, bins=bins, range=(0.0, top))
    w, h, pad = 360, 140, 24
    bar_w = (w - 2 * pad) / bins
    peak = max(int(counts.max()), 1)
    bars = "".join(
        f'<rect x="{pad + i * bar_w:.1f}" y="{h - pad - (c / peak) * (h - 2 * pad):.1f}" width="{bar_w - 1:.1f}" '
        f'height="{(c / peak) * (h - 2 * pad):.1f}" fill="#c0392b"><title>{edges[i]:.3f}–{edges[i + 1]:.3f}: {c}</title></rect>'
        for i, c in enumerate(counts)
    )
    return (
        f'<svg class="hist" width="{w}" height="{h}" role="img" aria-label="DI histogram {_esc(title)}">'
        f'<text x="{pad}" y="14" font-size="12">{_esc(title)}</text>{bars}'
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#333"/>'
        f'<text x="{pad}" y="{h - 6}" font-size="10">0</text>'
        f'<text x="{w - pad}" y="{h - 6}" font-size="10" text-anchor="end">DI {top:.2f}</text></svg>'
    )


def _blend_png(row: dict, out_dir: Path) -> str | None:
    """Abs-saliency blend over the upsampled LR with the window box; returns the file name."""
    from lamfast import viz
    from lamfast.imageio import ImageError, prepare_images, read_rgb

    params = json.loads(row["params"])
    try:
        img, _ = read_rgb(row["image"])
        lr = img if params.get("lr_input") else prepare_images(img, row["scale"])[1]
    except (ImageError, ValueError):
        return None
    a = torch.from_numpy(row["attribution"])
    grad = a.sum(0).abs()
    saliency = grad / grad.max()
    panel = viz.blend(viz.saliency_image(saliency, row["scale"]), lr, 0.5)
    panel = viz.window_image(panel, row["h"], row["w"], row["size"])
    name = hashlib.sha1(row["key"].encode()).hexdigest()[:16] + ".png"
    panel.save(out_dir / name)
    return name


def write_report(store: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir/index.html`` (and ``img/``) for a store; returns the HTML path."""
    if not Path(store).is_file():
        raise ValueError(f"store not found: {store}")
    out_dir = Path(out_dir)
    img_dir = out_dir / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    with ResultStore(store) as db:
        rows = list(db.rows(with_maps=True))
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] != "ok"]
    by_model: dict[str, list[float]] = defaultdict(list)
    for r in ok:
        by_model[r["model"]].append(r["di"])

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>lamfast report</title><style>{_CSS}</style>"
             "</head><body>", f"<h1>lamfast report</h1><p>{len(ok)} windows, {len(failed)} failed rows, "
             f"{len({r['image'] for r in rows})} images, {len(by_model)} models. Store: {_esc(store)}</p>"]
    parts.append("<h2>Diffusion Index per model</h2><table id='summary' class='sortable'><thead><tr>"
                 "<th class='name'>model</th><th>windows</th><th>mean DI</th><th>median DI</th><th>min</th><th>max</th>"
                 "</tr></thead><tbody>")
    for model, dis in sorted(by_model.items()):
        parts.append(
            f"<tr><td class='name'>{_esc(model)}</td><td>{len(dis)}</td><td>{statistics.fmean(dis):.4f}</td>"
            f"<td>{statistics.median(dis):.4f}</td><td>{min(dis):.4f}</td><td>{max(dis):.4f}</td></tr>"
        )
    parts.append("</tbody></table>")
    parts += [_histogram_svg(dis, model) for model, dis in sorted(by_model.items())]

    parts.append("<h2>Windows</h2><table id='windows' class='sortable'><thead><tr><th class='name'>image</th>"
                 "<th class='name'>model</th><th>h</th><th>w</th><th>size</th><th>DI</th><th>Gini</th>"
                 "<th>NaN steps</th><th>seconds</th></tr></thead><tbody>")
    for r in ok:
        parts.append(
            f"<tr><td class='name' title='{_esc(r['image'])}'>{_esc(Path(r['image']).name)}</td>"
            f"<td class='name'>{_esc(r['model'])}</td><td>{r['h']}</td><td>{r['w']}</td><td>{r['size']}</td>"
            f"<td>{r['di']:.4f}</td><td>{r['gini']:.6f}</td><td>{r['nan_steps']}</td><td>{r['seconds']:.2f}</td></tr>"
        )
    parts.append("</tbody></table><h2>Gallery</h2>")
    by_unit: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in ok:
        by_unit[(r["image"], r["model"])].append(r)
    for (image, model), unit_rows in sorted(by_unit.items()):
        figures = []
        for r in sorted(unit_rows, key=lambda r: r["di"])[:GALLERY_WINDOWS]:
            name = _blend_png(r, img_dir)
            if name:
                figures.append(f"<figure><img src='img/{name}' alt='LAM blend {_esc(Path(image).name)} "
                               f"h={r['h']} w={r['w']}'><figcaption>h={r['h']} w={r['w']} DI {r['di']:.3f}"
                               "</figcaption></figure>")
        parts.append(f"<h3>{_esc(Path(image).name)} · {_esc(model)}</h3><div class='gallery'>{''.join(figures)}</div>")
    if failed:
        parts.append("<h2>Failures</h2><table id='failures' class='sortable'><thead><tr><th class='name'>image</th>"
                     "<th class='name'>model</th><th>window</th><th class='name'>error</th></tr></thead><tbody>")
        for r in failed:
            window = "—" if r["h"] < 0 else f"{r['h']},{r['w']},{r['size']}"
            parts.append(f"<tr><td class='name'>{_esc(Path(r['image']).name)}</td><td class='name'>{_esc(r['model'])}"
                         f"</td><td>{window}</td><td class='name'>{_esc(r['error'])}</td></tr>")
        parts.append("</tbody></table>")
    parts.append(f"<script>{_SORT_JS}</script></body></html>")
    index = out_dir / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index
