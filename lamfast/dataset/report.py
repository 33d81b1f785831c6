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
import html
import json
import statistics
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lamfast.dataset.store import ResultStore

from lamfast.errors import LamfastError

BOOTSTRAP = 2000
FIGURE_WINDOWS = 6
GALLERY_WINDOWS = 8
PAGE_ROWS = 100

_JS = """
function lamfastSortTable(table, col, asc) {
  var state = table._rows ? table : table;
  var rows = table._rows || Array.from(table.tBodies[0].rows);
  rows.sort(function (a, b) {
    var x = a.cells[col].dataset.v !== undefined ? a.cells[col].dataset.v : a.cells[col].textContent;
    var y = b.cells[col].dataset.v !== undefined ? b.cells[col].dataset.v : b.cells[col].textContent;
    var nx = parseFloat(x), ny = parseFloat(y);
    var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
    return asc ? c : -c;
  });
  if (table._rows) { table._rows = rows; lamfastRender(table); }
  else { var body = table.tBodies[0]; rows.forEach(function (r) { body.appendChild(r); }); }
}
function lamfastRender(table) {
  var q = (table._filter || '').toLowerCase();
  var shown = table._rows.filter(function (r) { return !q || r.textContent.toLowerCase().indexOf(q) >= 0; });
  var pages = Math.max(1, Math.ceil(shown.length / table._pageRows));
  table._page = Math.min(table._page, pages - 1);
  var body = table.tBodies[0];
  body.textContent = '';
  shown.slice(table._page * table._pageRows, (table._page + 1) * table._pageRows).forEach(function (r) {
    body.appendChild(r);
  });
  var info = document.getElementById(table.id + '-info');
  if (info) info.textContent = shown.length + ' rows, page ' + (table._page + 1) + ' of ' + pages;
}
document.querySelectorAll('table.paged').forEach(function (table) {
  table._rows = Array.from(table.tBodies[0].rows);
  table._page = 0; table._pageRows = parseInt(table.dataset.pageRows, 10); table._filter = '';
  var filter = document.getElementById(table.id + '-filter');
  if (filter) filter.addEventListener('input', function () { table._filter = filter.value; table._page = 0; lamfastRender(table); });
  var prev = document.getElementById(table.id + '-prev'), next = document.getElementById(table.id + '-next');
  if (prev) prev.addEventListener('click', function () { table._page = Math.max(0, table._page - 1); lamfastRender(table); });
  if (next) next.addEventListener('click', function () { table._page += 1; lamfastRender(table); });
  lamfastRender(table);
});
document.querySelectorAll('table.sortable').forEach(function (table) {
  Array.from(table.tHead.rows[0].cells).forEach(function (th) {
    th.addEventListener('click', function () {
      var asc = th.dataset.order !== 'asc';
      Array.from(table.tHead.rows[0].cells).forEach(function (o) { delete o.dataset.order; });
      th.dataset.order = asc ? 'asc' : 'desc';
      lamfastSortTable(table, th.cellIndex, asc);
    });
  });
});
document.querySelectorAll('.gallery-switch input').forEach(function (radio) {
  radio.addEventListener('change', function () {
    var box = radio.closest('.gallery-box');
    box.querySelectorAll('.gallery').forEach(function (g) { g.hidden = g.dataset.kind !== radio.value; });
  });
});
// index.html#selftest: click every header of every table, twice,
// and write what each column then holds into a pre element, id selftest (read by the tests).
if (location.hash === '#selftest') {
  var out = [];
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var n = table.tHead.rows[0].cells.length;
    for (var col = 0; col < n; col++) {
      var th = table.tHead.rows[0].cells[col];
      ['asc', 'desc'].forEach(function (order) {
        th.click();
        var body = table.tBodies[0];
        out.push({table: table.id, col: col, order: th.dataset.order, expected: order,
                  values: Array.from(body.rows).map(function (r) {
                    var c = r.cells[col]; return c.dataset.v !== undefined ? c.dataset.v : c.textContent; })});
      });
    }
  });
  var pre = document.createElement('pre'); pre.id = 'selftest'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}
"""

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 24px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#eee;cursor:pointer;user-select:none}th[data-order=asc]::after{content:' \\25B2'}
th[data-order=desc]::after{content:' \\25BC'}td.name,th.name{text-align:left}
.params td{text-align:left}.note{color:#555;font-size:13px}
.gallery{display:flex;flex-wrap:wrap;gap:8px}.gallery[hidden]{display:none}.gallery figure{margin:0;font-size:12px}
.gallery img{width:192px;height:192px;image-rendering:pixelated;border:1px solid #999}
.figure td{vertical-align:top;text-align:center;font-size:12px}.figure img{image-rendering:pixelated;border:1px solid #999}
.hist{margin:4px 24px 16px 0;display:inline-block}.pager{margin:4px 0}.pager input{width:240px}
"""


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def bootstrap_ci(values, seed: int = 0, n: int = BOOTSTRAP) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of ``values`` (seeded, so reports are reproducible)."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return float("nan"), float("nan")
    if a.size == 1:
        return float(a[0]), float(a[0])
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, a.size, size=(n, a.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def model_summary(dis: list[float]) -> dict[str, float]:
    """mean, median, std (sample), 95% CI of the mean, and n."""
    lo, hi = bootstrap_ci(dis)
    return {"n": len(dis), "mean": statistics.fmean(dis), "median": statistics.median(dis),
            "std": statistics.stdev(dis) if len(dis) > 1 else 0.0, "ci_low": lo, "ci_high": hi}


def paired(rows_a: list[dict], rows_b: list[dict]) -> dict[str, float] | None:
    """Model A against B over the windows both have: mean of DI_A - DI_B, its 95% CI, and who is higher how often."""
    b = {(r["image"], r["h"], r["w"], r["size"]): r["di"] for r in rows_b}
    pairs = [(r["di"], b[k]) for r in rows_a if (k := (r["image"], r["h"], r["w"], r["size"])) in b]
    if not pairs:
        return None
    diff = [x - y for x, y in pairs]
    lo, hi = bootstrap_ci(diff)
    return {"n": len(pairs), "mean_diff": statistics.fmean(diff), "ci_low": lo, "ci_high": hi,
            "a_higher": sum(d > 0 for d in diff) / len(diff), "b_higher": sum(d < 0 for d in diff) / len(diff)}


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def _histogram_svg(values: list[float], title: str, lo: float, hi: float, peak: int, bins: int = 20) -> str:
    """DI histogram on the shared axis [lo, hi] and the shared count scale ``peak``."""
    counts, _ = np.histogram(values, bins=bins, range=(lo, hi))
    w, h, left, bottom, top = 380, 170, 34, 34, 20
    plot_w, plot_h = w - left - 10, h - top - bottom
    bar_w = plot_w / bins
    edges = np.linspace(lo, hi, bins + 1)
    bars = "".join(
        f'<rect x="{left + i * bar_w:.1f}" y="{top + plot_h - (c / peak) * plot_h:.1f}" width="{max(bar_w - 1, 0.5):.1f}" '
        f'height="{(c / peak) * plot_h:.1f}" fill="#c0392b"><title>DI {edges[i]:.3f} to {edges[i + 1]:.3f}: {c}</title></rect>'
        for i, c in enumerate(counts))
    xt = "".join(
        f'<line x1="{left + (t - lo) / (hi - lo) * plot_w:.1f}" y1="{top + plot_h}" '
        f'x2="{left + (t - lo) / (hi - lo) * plot_w:.1f}" y2="{top + plot_h + 4}" stroke="#333"/>'
        f'<text x="{left + (t - lo) / (hi - lo) * plot_w:.1f}" y="{top + plot_h + 15}" font-size="10" '
        f'text-anchor="middle">{t:.2f}</text>' for t in _ticks(lo, hi))
    yt = "".join(
        f'<text x="{left - 4}" y="{top + plot_h - v / peak * plot_h + 3:.1f}" font-size="10" text-anchor="end">{v}</text>'
        for v in sorted({0, peak // 2, peak}))
    return (f'<svg class="hist" width="{w}" height="{h}" role="img" aria-label="DI histogram {_esc(title)}">'
            f'<text x="{left}" y="13" font-size="12">{_esc(title)}</text>{bars}'
            f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>'
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>{xt}{yt}'
            f'<text x="{left + plot_w / 2:.0f}" y="{h - 3}" font-size="10" text-anchor="middle">DI</text></svg>')


def _lr_image(row: dict) -> Image.Image | None:
    """The row's LR input, made as the run made it (None when the image is no longer there)."""
    from lamfast.request import prepare_input

    try:
        return prepare_input(None, row["image"], json.loads(row["params"]).get("lr_input", False),
                             scale=row["scale"]).lr
    except ValueError:
        return None


def _saliency(row: dict) -> torch.Tensor:
    grad = torch.from_numpy(row["attribution"]).sum(0).abs()
    return grad / grad.max().clamp_min(1e-30)


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


def _th(label: str, name: bool = False) -> str:
    return f"<th class='name'>{label}</th>" if name else f"<th>{label}</th>"


def _td(value, fmt: str = "{:.4f}", name: bool = False) -> str:
    if name:
        return f"<td class='name'>{_esc(value)}</td>"
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "<td data-v=''>—</td>"
    return f"<td data-v='{value}'>{fmt.format(value)}</td>"


def _section(gid: str, params: dict, ok: list[dict], img_dir: Path) -> list[str]:
    """One parameter set's tables and figures."""
    by_model: dict[str, list[dict]] = defaultdict(list)
    for r in ok:
        by_model[r["model"]].append(r)
    models = sorted(by_model)
    parts = [f"<h2 id='set-{gid}'>Parameter set {gid}</h2><table class='params'><tbody>"]
    parts += [f"<tr><th class='name'>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in sorted(params.items())]
    parts.append(f"</tbody></table><p class='note'>{len(ok)} windows, {len(models)} models, "
                 f"{len({r['image'] for r in ok})} images.</p>")

    parts.append(f"<h3>DI per model</h3><table id='models-{gid}' class='sortable'><thead><tr>{_th('model', True)}"
                 f"{_th('windows')}{_th('mean DI')}{_th('median')}{_th('std')}{_th('95% CI low')}"
                 f"{_th('95% CI high')}</tr></thead><tbody>")
    for m in models:
        st = model_summary([r["di"] for r in by_model[m]])
        parts.append(f"<tr>{_td(m, name=True)}{_td(st['n'], '{}')}{_td(st['mean'])}{_td(st['median'])}"
                     f"{_td(st['std'])}{_td(st['ci_low'])}{_td(st['ci_high'])}</tr>")
    parts.append("</tbody></table><p class='note'>95% CI: percentile bootstrap of the mean, "
                 f"{BOOTSTRAP} resamples, seeded.</p>")

    if len(models) > 1:
        parts.append(f"<h3>Paired comparison</h3><table id='pairs-{gid}' class='sortable'><thead><tr>"
                     f"{_th('model A', True)}{_th('model B', True)}{_th('paired windows')}{_th('mean DI A − B')}"
                     f"{_th('95% CI low')}{_th('95% CI high')}{_th('A higher')}{_th('B higher')}</tr></thead><tbody>")
        for a, b in combinations(models, 2):
            p = paired(by_model[a], by_model[b])
            if p is None:
                parts.append(f"<tr>{_td(a, name=True)}{_td(b, name=True)}{_td(0, '{}')}"
                             + "<td data-v=''>—</td>" * 5 + "</tr>")
                continue
            parts.append(f"<tr>{_td(a, name=True)}{_td(b, name=True)}{_td(p['n'], '{}')}{_td(p['mean_diff'])}"
                         f"{_td(p['ci_low'])}{_td(p['ci_high'])}{_td(p['a_higher'], '{:.1%}')}"
                         f"{_td(p['b_higher'], '{:.1%}')}</tr>")
        parts.append("</tbody></table><p class='note'>Over the windows both models have (same image, same "
                     "window). The shares leave out exact ties.</p>")

    all_di = [r["di"] for r in ok]
    lo, hi = min(all_di), max(all_di)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    bins = 20
    peak = max(int(np.histogram([r["di"] for r in by_model[m]], bins=bins, range=(lo, hi))[0].max()) for m in models)
    parts.append("<h3>DI histograms (one axis)</h3><div>")
    parts += [_histogram_svg([r["di"] for r in by_model[m]], m, lo, hi, max(peak, 1), bins) for m in models]
    parts.append("</div>")

    keys = defaultdict(dict)
    for r in ok:
        keys[(r["image"], r["h"], r["w"], r["size"])][r["model"]] = r
    shared = [(k, v) for k, v in keys.items() if len(v) == len(models)]
    if shared:
        # the windows where the models disagree most, then by name for a stable order
        shared.sort(key=lambda kv: (-(max(r["di"] for r in kv[1].values()) - min(r["di"] for r in kv[1].values())),
                                    kv[0]))
        parts.append(f"<h3>LAM figure</h3><table id='figure-{gid}' class='figure'><thead><tr><th>window</th>"
                     + "".join(f"<th>{_esc(m)}</th>" for m in models) + "</tr></thead><tbody>")
        for (image, h, w, size), per_model in shared[:FIGURE_WINDOWS]:
            cells = []
            for m in models:
                name = _figure_cell(per_model[m], img_dir)
                img = f"<img src='img/{name}' alt='LAM and KDE of {_esc(m)}'>" if name else "(image unreadable)"
                cells.append(f"<td>{img}<br>DI {per_model[m]['di']:.3f}</td>")
            parts.append(f"<tr><td class='name'>{_esc(Path(image).name)}<br>h={h} w={w} size={size}</td>"
                         + "".join(cells) + "</tr>")
        parts.append("</tbody></table><p class='note'>Each cell: the LAM map and the KDE map over the LR "
                     "image, zoomed around the window (box), and the colour bar (red: attribution up to the "
                     "map's peak).</p>")

    parts.append("<h3>Galleries</h3>")
    for m in models:
        rows = sorted(by_model[m], key=lambda r: (r["di"], r["key"]))
        box = [f"<div class='gallery-box'><h4>{_esc(m)}</h4><span class='gallery-switch'>"
               f"<label><input type='radio' name='g-{gid}-{_esc(hashlib.sha1(m.encode()).hexdigest()[:8])}' "
               "value='high' checked> highest DI</label> <label><input type='radio' "
               f"name='g-{gid}-{_esc(hashlib.sha1(m.encode()).hexdigest()[:8])}' value='low'> lowest DI</label>"
               "</span>"]
        for kind, chosen in (("high", rows[::-1][:GALLERY_WINDOWS]), ("low", rows[:GALLERY_WINDOWS])):
            figures = []
            for r in chosen:
                name = _blend_png(r, img_dir)
                if name:
                    figures.append(f"<figure><img src='img/{name}' alt='LAM blend {_esc(Path(r['image']).name)} "
                                   f"h={r['h']} w={r['w']}'><figcaption>{_esc(Path(r['image']).name)} h={r['h']} "
                                   f"w={r['w']} DI {r['di']:.3f}</figcaption></figure>")
            hidden = "" if kind == "high" else " hidden"
            box.append(f"<div class='gallery' data-kind='{kind}'{hidden}>{''.join(figures)}</div>")
        parts.append("".join(box) + "</div>")
    return parts


def write_report(store: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir/index.html`` (and ``img/``) for a store; returns the HTML path."""
    if not Path(store).is_file():
        raise LamfastError(f"store not found: {store}")
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

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>lamfast report</title><style>{_CSS}</style>"
             "</head><body>", "<h1>lamfast report</h1>",
             f"<p>Store {_esc(store)}: {len(ok)} windows, {len(failed)} failed rows, "
             f"{len({r['image'] for r in rows})} images, {len({r['model'] for r in rows})} models, "
             f"{len(groups)} parameter set(s). Results of different parameter sets are never pooled.</p>"]
    if groups:
        parts.append("<table class='params'><thead><tr><th class='name'>parameter set</th>"
                     "<th class='name'>parameters</th><th>windows</th></tr></thead><tbody>")
        for gid in sorted(groups):
            text = ", ".join(f"{k}={v}" for k, v in sorted(params[gid].items()))
            parts.append(f"<tr><td class='name'><a href='#set-{gid}'>{gid}</a></td><td class='name'>{_esc(text)}</td>"
                         f"<td>{len(groups[gid])}</td></tr>")
        parts.append("</tbody></table>")
    for gid in sorted(groups):
        parts += _section(gid, params[gid], groups[gid], img_dir)

    parts.append("<h2>Windows</h2><div class='pager'><input id='windows-filter' type='search' "
                 "placeholder='filter rows (image, model, ...)'> <button id='windows-prev'>previous</button> "
                 "<button id='windows-next'>next</button> <span id='windows-info'></span></div>"
                 f"<table id='windows' class='sortable paged' data-page-rows='{PAGE_ROWS}'><thead><tr>"
                 f"{_th('image', True)}{_th('model', True)}{_th('set', True)}{_th('h')}{_th('w')}{_th('size')}"
                 f"{_th('DI')}{_th('Gini')}{_th('NaN steps')}{_th('seconds')}</tr></thead><tbody>")
    for r in ok:
        parts.append(f"<tr><td class='name' title='{_esc(r['image'])}'>{_esc(Path(r['image']).name)}</td>"
                     f"{_td(r['model'], name=True)}{_td(r['params_hash'], name=True)}{_td(r['h'], '{}')}"
                     f"{_td(r['w'], '{}')}{_td(r['size'], '{}')}{_td(r['di'])}{_td(r['gini'], '{:.6f}')}"
                     f"{_td(r['nan_steps'], '{}')}{_td(r['seconds'], '{:.2f}')}</tr>")
    parts.append("</tbody></table>")
    if failed:
        parts.append("<h2>Failures</h2><table id='failures' class='sortable'><thead><tr>"
                     f"{_th('image', True)}{_th('model', True)}{_th('window', True)}{_th('error', True)}"
                     "</tr></thead><tbody>")
        for r in failed:
            window = "—" if r["h"] < 0 else f"{r['h']},{r['w']},{r['size']}"
            parts.append(f"<tr>{_td(Path(r['image']).name, name=True)}{_td(r['model'], name=True)}"
                         f"{_td(window, name=True)}{_td(r['error'], name=True)}</tr>")
        parts.append("</tbody></table>")
    parts.append(f"<script>{_JS}</script></body></html>")
    index = out_dir / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index
