"""LAM figures from tensors, pixel for pixel like the official LAM_Demo visuals.

Panels (all ``zoom`` × the LR size): the HR image with the window box,
the abs saliency (matplotlib ``seismic`` at ``0.5 + 0.5·M``, nearest zoom),
its blend with the upsampled LR, the KDE blend (bicubic zoom) and the SR
result; :func:`grid` puts them side by side like the official figure.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw

from lamfast.imageio import to_pil
from lamfast.ops import kde_map

from lamfast.errors import LamfastError

# matplotlib's "seismic" colour stops (equally spaced), so matplotlib is not needed.
_SEISMIC = ((0.0, 0.0, 0.3), (0.0, 0.0, 1.0), (1.0, 1.0, 1.0), (1.0, 0.0, 0.0), (0.5, 0.0, 0.0))


@lru_cache(maxsize=1)
def _seismic_lut(n: int = 256) -> np.ndarray:
    """The 256-entry lookup table matplotlib builds for ``seismic``: [256,3]."""
    # Same arithmetic as matplotlib's _create_lookup_table: the uint8
    # truncation downstream turns a 1-ulp difference into a colour step.
    stops = np.linspace(0.0, 1.0, len(_SEISMIC)) * (n - 1)
    xind = (n - 1) * np.linspace(0.0, 1.0, n)
    ind = np.searchsorted(stops, xind)[1:-1]
    lut = np.empty((n, 3))
    for ch in range(3):
        y = np.array([c[ch] for c in _SEISMIC])
        dist = (xind[1:-1] - stops[ind - 1]) / (stops[ind] - stops[ind - 1])
        lut[:, ch] = np.clip(np.concatenate([[y[0]], dist * (y[ind] - y[ind - 1]) + y[ind - 1], [y[-1]]]), 0, 1)
    return lut


def seismic(values: torch.Tensor) -> np.ndarray:
    """``(255 * plt.get_cmap('seismic')(values)).astype(uint8)`` without alpha.

    Args:
        values: [H,W] in [0,1].
    Returns:
        [H,W,3] uint8.
    """
    x = values.detach().to(torch.float32).cpu().numpy() * np.float32(256)
    x[x == 256] = 255
    idx = np.clip(x, 0, 255).astype(np.int64)  # truncation, as matplotlib
    return (255 * _seismic_lut()[idx]).astype(np.uint8)


def saliency_image(saliency: torch.Tensor, zoom: int) -> Image.Image:
    """Official ``vis_saliency``: seismic(0.5 + 0.5·M), nearest zoom. [H,W] -> PIL."""
    M = saliency.detach().to(torch.float32)
    img = Image.fromarray(seismic(M * 0.5 + 0.5))
    return img.resize((img.width * zoom, img.height * zoom), Image.NEAREST)


def density_image(density: torch.Tensor, zoom: int) -> Image.Image:
    """A KDE density [H,W] in [0,1] as the official ``vis_saliency_kde`` draws it: seismic, bicubic zoom -> PIL."""
    img = Image.fromarray(seismic(density.detach().to(torch.float32) * 0.5 + 0.5))
    return img.resize((img.width * zoom, img.height * zoom), Image.BICUBIC)


def kde_image(saliency: torch.Tensor, zoom: int) -> Image.Image:
    """Official ``vis_saliency_kde``: KDE density (float64), seismic, bicubic zoom. [H,W] -> PIL."""
    return density_image(kde_map(saliency.detach().to(torch.float64)), zoom)


def blend(panel: Image.Image, lr: Image.Image, alpha: float) -> Image.Image:
    """``panel·(1-alpha) + lr.resize(panel.size)·alpha`` with uint8 truncation (official)."""
    up = np.asarray(lr.convert("RGB").resize(panel.size, Image.BICUBIC), dtype=np.float64)
    mixed = np.asarray(panel.convert("RGB"), dtype=np.float64) * (1.0 - alpha) + up * alpha
    return Image.fromarray(mixed.astype(np.uint8))


def window_image(hr: Image.Image, h: int, w: int, size: int) -> Image.Image:
    """The HR image with the LAM window drawn as a red 2-px box."""
    img = hr.convert("RGB").copy()
    ImageDraw.Draw(img).rectangle([w, h, w + size, h + size], outline=(255, 0, 0), width=2)
    return img


def window_crop(image: Image.Image, h: int, w: int, size: int, zoom_to: int) -> Image.Image:
    """A square around the window (4 window sides, at least 48 px), zoomed to ``zoom_to`` px (nearest)."""
    side = min(max(4 * size, 48), image.width, image.height)
    top = min(max(0, h + size // 2 - side // 2), image.height - side)
    left = min(max(0, w + size // 2 - side // 2), image.width - side)
    return image.crop((left, top, left + side, top + side)).resize((zoom_to, zoom_to), Image.NEAREST)


FIGURE_PANELS = ("abs", "blend", "kde")


def window_figure(saliency: torch.Tensor, lr: Image.Image, scale: int, window: tuple[int, int, int],
                  zoom_to: int = 160, panels: tuple[str, ...] = ("blend", "kde")) -> Image.Image:
    """The LAM-paper cell of one window, panels side by side, each cropped around the window (boxed)
    and zoomed to ``zoom_to`` px.

    Args:
        saliency: [H,W] the window's map at LR size.
        lr: the LR image (PIL); scale: the SR factor; window: (h, w, size) in SR pixels.
        panels: any of ``"abs"`` (the abs map alone), ``"blend"`` (it over the upsampled LR) and
            ``"kde"`` (its KDE over the upsampled LR), in that order of drawing.
    """
    unknown = [p for p in panels if p not in FIGURE_PANELS]
    if unknown or not panels:
        raise LamfastError(f"panels must be some of {FIGURE_PANELS}, got {panels!r}", param="panels")
    h, w, size = window
    drawn = {"abs": lambda: saliency_image(saliency, scale),
             "blend": lambda: blend(saliency_image(saliency, scale), lr, 0.5),
             "kde": lambda: blend(kde_image(saliency, scale), lr, 0.5)}
    cell = Image.new("RGB", (len(panels) * (zoom_to + 3) - 3, zoom_to), "white")
    for k, kind in enumerate(panels):
        cell.paste(window_crop(window_image(drawn[kind]().convert("RGB"), h, w, size), h, w, size, zoom_to),
                   (k * (zoom_to + 3), 0))
    return cell


COLOUR_BAR_TICKS = (1.0, 0.75, 0.5, 0.25, 0.0)


def colour_bar(height: int, font_size: int = 10) -> Image.Image:
    """The maps' colour scale, top = the map's peak: a bar with ticks at :data:`COLOUR_BAR_TICKS`
    (|attribution| over its peak) and their labels."""
    from PIL import ImageFont

    bar_w, pad = max(10, font_size), max(6, font_size // 2 + 1)  # the bar; room for a label's half height
    values = torch.linspace(1.0, 0.0, height)[:, None].expand(height, bar_w)
    out = Image.new("RGB", (bar_w + 4 + 3 * font_size, height + 2 * pad), "white")
    out.paste(Image.fromarray(seismic(0.5 + 0.5 * values)), (0, pad))
    draw, font = ImageDraw.Draw(out), ImageFont.load_default(size=font_size)
    for t in COLOUR_BAR_TICKS:
        y = pad + round((1.0 - t) * (height - 1))
        draw.line([(bar_w, y), (bar_w + 3, y)], fill="black")
        draw.text((bar_w + 5, y), f"{t:g}", fill="black", font=font, anchor="lm")
    return out


def _wrap(text: str, font, measure: ImageDraw.ImageDraw, width: int) -> list[str]:
    """``text`` in lines no wider than ``width``, broken at its double spaces (between its parts)."""
    lines: list[str] = []
    for part in text.split("  "):
        if lines and measure.textlength(lines[-1] + "  " + part, font=font) <= width:
            lines[-1] += "  " + part
        else:
            lines.append(part)
    return lines


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def titled(panels: list[Image.Image], titles: list[str], caption: str, *, row_labels: list[str] | None = None,
           bar: bool = True) -> Image.Image:
    """A figure for a paper: ``panels`` (rows of equal-size images, or one row) under their ``titles``,
    ``caption`` (DI, window, parameters) above, optional row labels (a clip's ``t = ...``) on the
    left, and the maps' colour bar on the right. Text scales with the panel height, so it stays
    legible when the figure is printed one column wide.

    Args:
        panels: one row [P] of images, or rows [[P], ...] (all the same size).
        titles: P column titles.
        caption: the line above the titles.
        row_labels: one label per row, or None.
        bar: draw the colour bar (|attribution| over the map's peak).
    """
    rows = panels if panels and isinstance(panels[0], list) else [panels]
    w, h = rows[0][0].size
    if any(p.size != (w, h) for r in rows for p in r) or any(len(r) != len(titles) for r in rows):
        raise LamfastError("titled: every row needs one panel per title, all of one size")
    size = max(14, h // 11)  # about 8 pt when the figure is printed a page wide
    font, small = _font(size), _font(max(12, size - 2))
    label_w = (max(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(t, font=small) for t in row_labels) + 12
               if row_labels else 0)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = _wrap(caption, font, measure, int(label_w) + w * len(titles) - 8)
    top = (len(lines) + 1) * (size + 4) + 10
    bar_img = colour_bar(min(h * len(rows), 4 * h) - size, font_size=max(10, size - 2)) if bar else None
    bar_label = "|attr| / peak"
    bar_w = max(bar_img.width, int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(bar_label, font=small))) + 10 \
        if bar_img else 0
    out = Image.new("RGB", (int(label_w) + w * len(titles) + bar_w, top + h * len(rows)), "white")
    draw = ImageDraw.Draw(out)
    for k, line in enumerate(lines):
        draw.text((int(label_w) + 4, 4 + k * (size + 4)), line, fill="black", font=font)
    title_y = 6 + len(lines) * (size + 4)
    for j, t in enumerate(titles):
        draw.text((int(label_w) + j * w + w // 2, title_y), t, fill="black", font=font, anchor="ma")
    for i, r in enumerate(rows):
        for j, p in enumerate(r):
            out.paste(p.convert("RGB"), (int(label_w) + j * w, top + i * h))
        if row_labels:
            draw.text((6, top + i * h + h // 2), row_labels[i], fill="black", font=small, anchor="lm")
    if bar_img is not None:
        x = int(label_w) + w * len(titles) + 4
        out.paste(bar_img, (x, top))
        draw.text((x, title_y), bar_label, fill="black", font=small)
    return out


def grid(panels: list[Image.Image]) -> Image.Image:
    """Panels side by side (the official ``make_pil_grid``); all must share one size."""
    sizes = {p.size for p in panels}
    if len(sizes) != 1:
        raise LamfastError(f"grid: panels must share one size, got {sorted(sizes)}")
    w, h = panels[0].size
    out = Image.new("RGB", (w * len(panels), h))
    for i, p in enumerate(panels):
        out.paste(p.convert("RGB"), (w * i, 0))
    return out


def lam_panels(result, hr: Image.Image, lr: Image.Image, *, alpha: float = 0.5, zoom: int | None = None,
               kde: bool = True, bands: tuple[int, int, int] | None = None) -> dict[str, Image.Image]:
    """Every LAM figure for a :class:`lamfast.LAMResult`, keyed by file stem.

    Args:
        result: the LAM result.
        hr: the HR image (PIL, scale × LR size), shown with the window box.
        lr: the LR input (PIL) for the blends.
        alpha: weight of the upsampled LR in the blends.
        zoom: zoom of the saliency panels; default the model's scale. Other
            panels are resized to match.
        kde: include the KDE blend.
        bands: for a multi-band SR output, the three bands (1-based) drawn as RGB (default: their mean).
    Returns:
        {"window_position", "sr", "saliency_abs", "blend_abs", ["blend_kde"], "grid"}.
    """
    zoom = zoom or result.scale
    h, w, size = result.window
    size_px = (lr.width * zoom, lr.height * zoom)

    def fit(img: Image.Image, resample=Image.BICUBIC) -> Image.Image:
        return img if img.size == size_px else img.resize(size_px, resample)

    panels = {
        "window_position": fit(window_image(hr, h, w, size)),
        "saliency_abs": saliency_image(result.saliency, zoom),
    }
    panels["blend_abs"] = blend(panels["saliency_abs"], lr, alpha)
    if kde:
        panels["blend_kde"] = blend(kde_image(result.saliency, zoom), lr, alpha)
    panels["sr"] = fit(to_pil(result.sr, bands))
    order = ["window_position", "saliency_abs", "blend_abs"] + (["blend_kde"] if kde else []) + ["sr"]
    panels["grid"] = titled([panels[k] for k in order], [PANEL_TITLES[k] for k in order], result_caption(result))
    return panels


# What each panel of a LAM figure shows, as its title says it.
PANEL_TITLES = {"window_position": "HR, window", "saliency_abs": "|attribution|", "blend_abs": "LAM on LR",
                "blend_kde": "KDE on LR", "sr": "SR output"}


def result_caption(result) -> str:
    """A figure's caption line: DI (and its fold/2 value), Gini, the window and the path.

    Example:
        >>> import lamfast
        >>> from lamfast.request import prepare_input
        >>> from lamfast.viz import result_caption
        >>> model = lamfast.load_model()
        >>> print(result_caption(lamfast.lam(model, prepare_input(model, "bundled").tensor(), 150, 110, fold=10)))
        DI 0.6553 (fold/2 0.6584)  Gini 0.9934  window h=150 w=110 size 16  fold 10, sigma 1.2, kernel 9
    """
    h, w, size = result.window
    half = f" (fold/2 {result.di_fold_half:.4f})" if result.di_fold_half is not None else ""
    p = result.params
    return (f"DI {result.di:.4f}{half}  Gini {result.gini:.4f}  window h={h} w={w} size {size}  "
            f"fold {p.fold}, sigma {p.sigma:g}, kernel {p.l}")
