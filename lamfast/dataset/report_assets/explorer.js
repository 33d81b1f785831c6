// The lamfast explorer: DI maps drawn on canvases, a window's LAM shown on click, arrows to move.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("data").textContent);
  const [SW, SH] = D.sr_size;
  const ZOOM = Math.max(1, Math.floor(384 / Math.max(SW, SH)));
  const NI = D.rows.length, NJ = D.cols.length;
  const at = {};  // model -> "i,j" -> window
  D.models.forEach((m) => { at[m] = {}; });
  D.windows.forEach((w) => { at[w.model][w.i + "," + w.j] = w; });
  const finite = D.windows.map((w) => w.di).filter((v) => v !== null && isFinite(v));
  let LO = Math.min(...finite), HI = Math.max(...finite);
  if (!(HI > LO)) { LO -= 0.5; HI += 0.5; }
  // viridis stops: a perceptual scale for DI (low: dark, high: yellow)
  const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function lerp(stops, t) {
    t = Math.min(1, Math.max(0, t)) * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(t)), f = t - k;
    return stops[k].map((a, c) => Math.round(a + f * (stops[k + 1][c] - a)));
  }
  const DIVERGING = [[33, 102, 172], [247, 247, 247], [178, 24, 43]];
  const tileRows = D.rows.map((r, i) => [r, i + 1 < NI ? D.rows[i + 1] : SH]);
  const tileCols = D.cols.map((c, j) => [c, j + 1 < NJ ? D.cols[j + 1] : SW]);
  let sel = null;
  const panels = [];

  function colourBar(lo, hi, stops, label) {
    const c = document.createElement("canvas");
    const h = Math.min(SH * ZOOM, 300);
    c.width = 64; c.height = h + 16;
    const g = c.getContext("2d");
    for (let y = 0; y < h; y++) {
      const [r, gg, b] = lerp(stops, 1 - y / (h - 1));
      g.fillStyle = `rgb(${r},${gg},${b})`; g.fillRect(0, y + 8, 14, 1);
    }
    g.fillStyle = "#222"; g.font = "10px sans-serif";
    for (let k = 0; k <= 4; k++) {
      const v = lo + (hi - lo) * (1 - k / 4), y = 8 + (h - 1) * k / 4;
      g.fillRect(14, y, 4, 1); g.fillText(v.toFixed(2), 20, y + 3);
    }
    c.title = label;
    c.className = "bar";
    return c;
  }

  function cellAt(canvas, ev) {
    const r = canvas.getBoundingClientRect();
    const x = (ev.clientX - r.left) * (canvas.width / r.width) / ZOOM;
    const y = (ev.clientY - r.top) * (canvas.height / r.height) / ZOOM;
    const i = tileRows.findIndex(([a, b]) => y >= a && y < b);
    const j = tileCols.findIndex(([a, b]) => x >= a && x < b);
    return i < 0 || j < 0 ? null : [i, j];
  }

  function makePanel(title, value, lo, hi, stops, background) {
    const div = document.createElement("div");
    div.className = "panel";
    div.innerHTML = `<h3></h3><div class="row"></div>`;
    div.querySelector("h3").textContent = title;
    const canvas = document.createElement("canvas");
    canvas.className = "map"; canvas.width = SW * ZOOM; canvas.height = SH * ZOOM;
    canvas.dataset.title = title;
    div.querySelector(".row").append(canvas, colourBar(lo, hi, stops, title));
    document.getElementById("panels").append(div);
    const p = {canvas, value, lo, hi, stops, img: null, title};
    if (background) {
      p.img = new Image();
      p.img.onload = () => draw(p);
      p.img.src = background;
    }
    canvas.addEventListener("mousemove", (ev) => {
      const c = cellAt(canvas, ev);
      const v = c ? value(c[0], c[1]) : null;
      document.getElementById("hover").textContent = c ?
        `${title}  h=${D.rows[c[0]]} w=${D.cols[c[1]]}  DI ${v === null ? "failed" : v.toFixed(4)}` : "\u00a0";
    });
    canvas.addEventListener("click", (ev) => { const c = cellAt(canvas, ev); if (c) select(c[0], c[1]); });
    panels.push(p);
    draw(p);
    return p;
  }

  function draw(p) {
    const g = p.canvas.getContext("2d");
    g.imageSmoothingEnabled = false;
    g.fillStyle = "#fff"; g.fillRect(0, 0, p.canvas.width, p.canvas.height);
    if (p.img && p.img.complete && p.img.naturalWidth) g.drawImage(p.img, 0, 0, p.canvas.width, p.canvas.height);
    g.globalAlpha = 0.55;
    for (let i = 0; i < NI; i++) for (let j = 0; j < NJ; j++) {
      const v = p.value(i, j);
      if (v === null) continue;
      const [r, gg, b] = lerp(p.stops, (v - p.lo) / (p.hi - p.lo));
      g.fillStyle = `rgb(${r},${gg},${b})`;
      g.fillRect(tileCols[j][0] * ZOOM, tileRows[i][0] * ZOOM, (tileCols[j][1] - tileCols[j][0]) * ZOOM,
                 (tileRows[i][1] - tileRows[i][0]) * ZOOM);
    }
    g.globalAlpha = 1;
    for (let i = 0; i < NI; i++) for (let j = 0; j < NJ; j++) if (p.value(i, j) === null) {
      g.strokeStyle = "#a00"; g.lineWidth = 1;
      g.strokeRect(tileCols[j][0] * ZOOM + 1, tileRows[i][0] * ZOOM + 1, 4, 4);
    }
    if (sel) {
      const w = D.windows.find((x) => x.i === sel[0] && x.j === sel[1]);
      g.strokeStyle = "#ff0000"; g.lineWidth = 2;
      g.strokeRect(D.cols[sel[1]] * ZOOM, D.rows[sel[0]] * ZOOM, w.size * ZOOM, w.size * ZOOM);
    }
  }

  function diOf(m) { return (i, j) => { const w = at[m][i + "," + j]; return w && w.di !== null ? w.di : null; }; }

  function select(i, j) {
    sel = [Math.min(NI - 1, Math.max(0, i)), Math.min(NJ - 1, Math.max(0, j))];
    panels.forEach(draw);
    const detail = document.getElementById("detail");
    detail.innerHTML = "";
    D.models.forEach((m) => {
      const w = at[m][sel[0] + "," + sel[1]];
      const fig = document.createElement("figure");
      fig.dataset.model = m;
      const cap = document.createElement("figcaption");
      if (!w || w.error) {
        cap.className = "failed";
        cap.textContent = `${m}: failed: ${w ? w.error : "no window"}`;
      } else {
        if (w.map) {
          const img = document.createElement("img");
          img.alt = `LAM of ${m} at h=${w.h} w=${w.w}`;
          img.src = w.map;  // loaded now, not with the page
          fig.append(img);
        }
        cap.innerHTML = `${m}  h=${w.h} w=${w.w} size=${w.size}  DI <span class="di"></span>` +
          (w.nan_steps ? `  <span class="failed">NaN steps ${w.nan_steps}</span>` : "") +
          `<br><span class="crop"></span>`;
        cap.querySelector(".di").textContent = w.di.toFixed(4);
        cap.querySelector(".crop").textContent = w.crop.box ? `crop ${w.crop.box.join(",")} (radius ${w.crop.radius})` :
          `whole image: ${w.crop.reason || ""}`;
      }
      fig.append(cap);
      detail.append(fig);
    });
    detail.dataset.selected = sel.join(",");
  }

  document.addEventListener("keydown", (ev) => {
    const move = {ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1]}[ev.key];
    if (!move) return;
    ev.preventDefault();
    select((sel ? sel[0] : 0) + (sel ? move[0] : 0), (sel ? sel[1] : 0) + (sel ? move[1] : 0));
  });

  D.models.forEach((m) => makePanel(m, diOf(m), LO, HI, STOPS, D.backgrounds[m]));
  if (D.models.length === 2) {
    const [a, b] = D.models;
    const diff = (i, j) => { const x = diOf(a)(i, j), y = diOf(b)(i, j); return x === null || y === null ? null : y - x; };
    let span = 0;
    for (let i = 0; i < NI; i++) for (let j = 0; j < NJ; j++) { const v = diff(i, j); if (v !== null) span = Math.max(span, Math.abs(v)); }
    span = span || 1;
    makePanel(`${b} − ${a}`, diff, -span, span, DIVERGING, D.backgrounds[b]);
  }

  // what the engine measured
  const rows = D.models.map((m) => {
    const e = D.engine[m];
    const reach = e.cropped ? `${e.reach}` : "—";
    return `<tr><td>${escape(m)}</td><td>${e.cropped}</td><td>${e.whole}</td><td>${escape(reach)}</td>` +
      `<td>${escape((e.whole_reasons || []).join("; ") || "—")}</td><td>${e.nan_windows} (${e.nan_steps} steps)</td>` +
      `<td>${e.failed}</td></tr>`;
  });
  const fails = D.failed.map((f) => `<li class="failed">${escape(f.model)} h=${f.h} w=${f.w}: ${escape(f.error)}</li>`);
  document.getElementById("engine").innerHTML =
    `<table><thead><tr><th>model</th><th>windows on crops</th><th>on the whole image</th><th>reach</th>` +
    `<th>why the whole image</th><th>windows with NaN steps</th><th>failed</th></tr></thead><tbody>${rows.join("")}` +
    `</tbody></table>` + (fails.length ? `<ul>${fails.join("")}</ul>` : "<p class='note'>No window failed.</p>");
  document.getElementById("params").textContent = Object.entries(D.params).map(([k, v]) => `${k}=${v}`).join(", ") +
    `; scale x${D.scale}; ${NI}x${NJ} windows`;

  function escape(s) { return String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c])); }

  const want = new URLSearchParams(location.hash.slice(1));
  if (want.has("h") && want.has("w")) {
    const i = D.rows.indexOf(Number(want.get("h"))), j = D.cols.indexOf(Number(want.get("w")));
    if (i >= 0 && j >= 0) select(i, j);
  }

  if (location.hash === "#selftest") {
    // Click cells and press keys as a user would; report what the detail panel then shows.
    const out = [];
    const canvas = panels[0].canvas;
    const requested = new Set();
    const shown = () => {
      document.querySelectorAll("#detail img").forEach((i) => requested.add(i.getAttribute("src")));
      const d = {};
      document.querySelectorAll("#detail figure").forEach((f) => {
        const s = f.querySelector(".di"); d[f.dataset.model] = s ? Number(s.textContent) : null;
      });
      return {selected: document.getElementById("detail").dataset.selected, di: d};
    };
    const clickCell = (i, j) => {
      const r = canvas.getBoundingClientRect();
      const x = r.left + ((tileCols[j][0] + tileCols[j][1]) / 2) * ZOOM * (r.width / canvas.width);
      const y = r.top + ((tileRows[i][0] + tileRows[i][1]) / 2) * ZOOM * (r.height / canvas.height);
      canvas.dispatchEvent(new MouseEvent("mousemove", {clientX: x, clientY: y, bubbles: true}));
      canvas.dispatchEvent(new MouseEvent("click", {clientX: x, clientY: y, bubbles: true}));
      return {action: `click ${i},${j}`, hover: document.getElementById("hover").textContent, ...shown()};
    };
    out.push(clickCell(0, 0));
    out.push(clickCell(NI - 1, NJ - 1));
    out.push(clickCell(Math.floor(NI / 2), Math.floor(NJ / 3)));
    for (const key of ["ArrowRight", "ArrowDown", "ArrowLeft", "ArrowUp", "ArrowUp"]) {
      document.dispatchEvent(new KeyboardEvent("keydown", {key, bubbles: true}));
      out.push({action: key, ...shown()});
    }
    // What the page fetched, once the shown images are in: the maps come one window at a time, on
    // selection, never all at once.
    const pending = [...document.images].filter((i) => !i.complete)
      .map((i) => new Promise((done) => { i.addEventListener("load", done); i.addEventListener("error", done); }));
    Promise.all(pending).then(() => {
      const maps = [...document.images].filter((i) => (i.getAttribute("src") || "").startsWith("maps/"));
      out.push({action: "loaded", maps: requested.size, windows: D.windows.length, in_page: maps.length,
                drawn: maps.filter((i) => i.naturalWidth > 0).length});
      const pre = document.getElementById("selftest");
      pre.textContent = JSON.stringify(out);
      pre.hidden = false;
    });
  }
})();
