"""A report's figures as SVG/PDF and its DI tables as LaTeX (booktabs), for a paper.

The numbers are the HTML report's own (:func:`lamfast.dataset.report.write_report` computes
one section per parameter set and hands it here). Figures are drawn with matplotlib's object
API (no pyplot, no global state: settings apply inside the call only), text kept as text in
SVG, and no dates in the files, so the same store gives the same bytes. Tables need no
package but ``booktabs``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from lamfast.errors import LamfastError

FORMATS = ("html", "pdf", "svg", "tex")
FIGURE_FORMATS = ("pdf", "svg")

# Kept inside the call (matplotlib.rc_context): text stays text in SVG, fonts embedded as TrueType
# in PDF, ids in SVG from a fixed salt, no dates.
_RC = {"svg.fonttype": "none", "pdf.fonttype": 42, "svg.hashsalt": "lamfast", "font.size": 8}
_METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}


def parse_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    """``"html,pdf,svg,tex"`` or a list of those -> the formats in that order, checked; matplotlib is
    required for pdf and svg, and its absence is said here, before any work."""
    items = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats)]
    items = [f for f in items if f]
    unknown = [f for f in items if f not in FORMATS]
    if unknown or not items:
        raise LamfastError(f"formats must be some of {', '.join(FORMATS)}, got {formats!r}", param="formats")
    if any(f in FIGURE_FORMATS for f in items):
        from lamfast.optional import import_optional

        import_optional("matplotlib", "SVG and PDF figures", param="formats")
    return tuple(f for f in FORMATS if f in items)


# ---- LaTeX -----------------------------------------------------------------------------------------

_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: Any) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))


def _num(value, fmt: str = "{:.4f}") -> str:
    import math

    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "--"
    return fmt.format(value)


def _p(value) -> str:
    if value is None:
        return "--"
    return f"{value:.3g}" if value >= 1e-3 else f"{value:.1e}"


def tex_table(header: list[str], rows: list[list[str]], caption: str, label: str, align: str) -> str:
    """A booktabs table: ``header`` and ``rows`` are cells already in LaTeX (escaped)."""
    if len(align) != len(header) or any(len(r) != len(header) for r in rows):
        raise LamfastError("a LaTeX table's rows must have one cell per column")
    lines = [r"% written by lamfast report; needs \usepackage{booktabs}", r"\begin{table}[t]", r"\centering",
             rf"\caption{{{caption}}}", rf"\label{{{label}}}", rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def section_tables(s: dict) -> dict[str, str]:
    """The section's DI tables in LaTeX, by file stem: per model, per LR size, per image, paired."""
    where = f"LAM: {tex_escape(s['params_words'])}."
    if s.get("status"):
        where += f" {tex_escape(s['status'][0].upper() + s['status'][1:])}."
    label = f"tab:lamfast-{s['gid'][:8]}"
    out = {}
    models = s["models"]
    out["di_per_model"] = tex_table(
        ["Model", "LR size", "Windows", "Mean DI", r"95\% CI", r"$|\Delta_{1/2}|$", "Median", "PSNR (dB)", "SSIM"],
        [[tex_escape(m["name"]), tex_escape(m["lr_sizes"]), str(m["st"]["n"]), _num(m["st"]["mean"]),
          f"[{_num(m['st']['ci_low'])}, {_num(m['st']['ci_high'])}]", _num(m["di_error"]), _num(m["st"]["median"]),
          _num(m["psnr"], "{:.2f}"), _num(m["ssim"])] for m in models],
        f"DI per model over {s['n_windows']} windows of {s['n_images']} images; 95\\% CI: percentile bootstrap "
        r"of the mean; $|\Delta_{1/2}|$: mean $|$DI $-$ DI at fold/2$|$, the discretisation error. "
        f"PSNR/SSIM: {tex_escape(s['quality_convention'])}. {where}", f"{label}-models", "llrrrrrrr")
    out["di_per_size"] = tex_table(
        ["LR size", "Images"] + [f"{tex_escape(m['name'])} mean DI (n)" for m in models],
        [[tex_escape(row["size"]), str(row["images"])] +
         ["--" if c is None else f"{_num(c['mean'])} ({c['n']})" for c in row["cells"]] for row in s["per_size"]],
        f"Mean DI per LR size (windows in brackets): DI depends on the image size, so sizes are not pooled. "
        f"{where}", f"{label}-sizes", "lr" + "r" * len(models))
    out["per_image"] = tex_table(
        ["Image"] + [f"{tex_escape(m['name'])} {k}" for m in models for k in ("LR size", "DI", "PSNR", "SSIM")],
        [[tex_escape(row["name"])] +
         [v for c in row["cells"] for v in (tex_escape(c["lr_size"]), _num(c["di"]), _num(c["psnr"], "{:.2f}"),
                                            _num(c["ssim"]))]
         for row in s["per_image"]],
        f"Per image: the LR size each model saw, the mean DI of its windows, and PSNR/SSIM of each model's "
        f"output. {where}", f"{label}-images", "l" + "lrrr" * len(models))
    if s["pairs"]:
        rows = []
        for p in s["pairs"]:
            for over, st in (("windows", p["stats"]), ("images", p["images"])):
                if st is None:
                    rows.append([tex_escape(p["a"]), tex_escape(p["b"]), over, "--", "0", "--", "--", "--"])
                    continue
                rows.append([tex_escape(p["a"]), tex_escape(p["b"]), over, tex_escape(p["lr_sizes"]), str(st["n"]),
                             _num(st["mean_diff"]), f"[{_num(st['ci_low'])}, {_num(st['ci_high'])}]",
                             _p(st["wilcoxon_p"])])
        left_out = " ".join(f"{tex_escape(p['a'])} and {tex_escape(p['b'])}: {tex_escape(p['not_paired'])}."
                            for p in s["pairs"] if p["not_paired"])
        out["paired"] = tex_table(
            ["Model A", "Model B", "Over", "LR size", "Pairs", r"Mean DI A$-$B", r"95\% CI", "Wilcoxon $p$"], rows,
            "Paired DI differences over the windows both models have on LR inputs of one size, and over images "
            "(each image's windows averaged first); two-sided Wilcoxon signed-rank test. "
            f"{left_out + ' ' if left_out else ''}{where}", f"{label}-paired", "llllrrrr")
    return out


# ---- figures ---------------------------------------------------------------------------------------

def _histograms(fig, s: dict) -> None:
    import numpy as np

    values = s["di_values"]
    lo, hi = s["di_range"]
    edges = np.linspace(lo, hi, 21)
    axes = fig.subplots(1, len(values), sharex=True, sharey=True, squeeze=False)[0]
    for ax, (name, dis) in zip(axes, values.items()):
        ax.hist(dis, bins=edges, color="#4a7fb5")
        ax.set_title(name)
        ax.set_xlabel("DI")
    axes[0].set_ylabel("windows")


def _scatter(fig, s: dict) -> None:
    ax = fig.subplots()
    for p in s["scatter"]["points"]:
        low, high = p["di"] - p["ci_low"], p["ci_high"] - p["di"]
        ax.errorbar([p["psnr"]], [p["di"]], yerr=[[max(low, 0.0)], [max(high, 0.0)]], color="#c0392b", fmt="o",
                    capsize=3)
        ax.annotate(p["name"], (p["psnr"], p["di"]), textcoords="offset points", xytext=(5, 3))
    ax.set_xlabel("PSNR (dB)")
    ax.set_ylabel("mean DI")
    ax.margins(0.2)


def _panel_ticks(width: int, height: int, sr: bool) -> tuple[list[float], list[str]]:
    """Tick positions and labels naming the panels of a LAM figure cell: the SR output (a square of the
    cell's height, then a 3 px gap) where present, then the LAM and KDE blends side by side."""
    start = height + 3 if sr else 0
    half = (width - start) / 2
    centres, labels = [start + half / 2, start + 1.5 * half], ["LAM", "KDE"]
    return ([height / 2] + centres, ["SR"] + labels) if sr else (centres, labels)


def _lam_figure(fig, s: dict, img_dir: Path) -> None:
    import numpy as np
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LinearSegmentedColormap, Normalize
    from PIL import Image

    from lamfast.viz import seismic

    rows = s["figure"]
    cols = 1 + len(s["models"])
    ratios = [1.0] + [3.0 if any(r["cells"][k]["sr"] for r in rows) else 2.0 for k in range(len(s["models"]))]
    grid = fig.add_gridspec(len(rows), cols + 1, width_ratios=ratios + [0.08])
    for i, row in enumerate(rows):
        files = [row["hr"]] + [c["png"] for c in row["cells"]]
        for j, name in enumerate(files):
            ax = fig.add_subplot(grid[i, j])
            ax.set_xticks([])
            ax.set_yticks([])
            if name:
                # unclipped: the image fills its axes, and SVG ids of clip paths would come from memory addresses
                pixels = np.asarray(Image.open(img_dir / name).convert("RGB"))
                ax.imshow(pixels, interpolation="nearest", clip_on=False)
                if j > 0:  # which panel is which: the cell is [SR |] LAM | KDE (lamfast.dataset.report._figure_cell)
                    ax.set_xticks(*_panel_ticks(pixels.shape[1], pixels.shape[0], row["cells"][j - 1]["sr"]))
                    ax.tick_params(axis="x", length=0, labelsize=6, pad=1)
            if i == 0:
                ax.set_title("HR" if j == 0 else s["models"][j - 1]["name"])
            if j == 0:
                ax.set_ylabel(f"{row['image']}\n({row['h']},{row['w']})", fontsize=6)
            else:
                c = row["cells"][j - 1]
                ax.set_xlabel(f"DI {c['di']:.3f}" + (f", {c['psnr']:.2f} dB" if c["psnr"] is not None else ""),
                              fontsize=6)
    # the maps' colour scale: |attribution| over the map's peak, as the cells draw it
    import torch

    colours = seismic(0.5 + 0.5 * torch.linspace(0.0, 1.0, 256)[:, None])[:, 0, :3] / 255.0
    cmap = LinearSegmentedColormap.from_list("lamfast_abs", colours)
    bar = fig.add_subplot(grid[:, cols])
    fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap), cax=bar, ticks=[0, 0.25, 0.5, 0.75, 1.0],
                 label="|attribution| / peak")


def section_figures(s: dict, img_dir: Path) -> dict[str, Any]:
    """The section's figures as matplotlib Figures, by file stem (the LAM figure where it has windows)."""
    from matplotlib.figure import Figure

    out = {}
    n = len(s["di_values"])
    fig = Figure(figsize=(2.2 * n + 0.6, 2.0), layout="constrained")
    _histograms(fig, s)
    out["di_histograms"] = fig
    if s.get("scatter"):
        fig = Figure(figsize=(3.4, 2.6), layout="constrained")
        _scatter(fig, s)
        out["di_psnr"] = fig
    if s.get("figure"):
        width = 1.0 + sum(3.0 if any(r["cells"][k]["sr"] for r in s["figure"]) else 2.0
                          for k in range(len(s["models"])))
        fig = Figure(figsize=(1.1 * width + 0.8, 1.25 * len(s["figure"]) + 0.4), layout="constrained")
        _lam_figure(fig, s, img_dir)
        out["lam_figure"] = fig
    return out


def write_paper_outputs(sections: list[dict], out_dir: Path, img_dir: Path, formats: tuple[str, ...]) -> list[Path]:
    """Write every section's figures (``figures/<gid>_<name>.<pdf|svg>``) and tables
    (``tables/<gid>_<name>.tex``) for ``formats``; returns the files written."""
    written: list[Path] = []
    if "tex" in formats:
        (out_dir / "tables").mkdir(parents=True, exist_ok=True)
        for s in sections:
            for stem, text in section_tables(s).items():
                path = out_dir / "tables" / f"{s['gid']}_{stem}.tex"
                path.write_text(text, encoding="utf-8")
                written.append(path)
    kinds = [f for f in formats if f in FIGURE_FORMATS]
    if kinds:
        import matplotlib

        (out_dir / "figures").mkdir(parents=True, exist_ok=True)
        with matplotlib.rc_context(_RC):
            for s in sections:
                for stem, fig in section_figures(s, img_dir).items():
                    for kind in kinds:
                        path = out_dir / "figures" / f"{s['gid']}_{stem}.{kind}"
                        fig.savefig(path, format=kind, metadata=_METADATA[kind])
                        written.append(path)
    return written


__all__ = ["FORMATS", "parse_formats", "section_figures", "section_tables", "tex_escape", "tex_table",
           "write_paper_outputs"]
