"""Video LAM figures: one row of the official panels per input frame, and the frame-share bar chart.

Every frame's abs map is drawn on the clip's joint scale (``saliency`` of
:class:`lamfast.VideoLAMResult`), so a frame the window barely uses is
drawn pale. The KDE of each frame is its own density (the official KDE,
peak 1) times the frame's share over the largest share, so the KDE panels
compare across frames too.
"""
from __future__ import annotations

from PIL import Image, ImageDraw

from lamfast.errors import LamfastError
from lamfast.viz import PANEL_TITLES, _font, blend, density_image, grid, result_caption, saliency_image, titled, window_image

ROW_PANELS = ("window_position", "saliency_abs", "blend_abs", "blend_kde")


def frame_share_chart(shares: list[float], target: int | None, width: int = 360, height: int = 200,
                      font_size: int = 11) -> Image.Image:
    """A bar per input frame, its share of the clip's saliency in percent (the target frame in red), with
    its axis labels: "input frame t" below, "share of the clip's |attribution| (%)" along the left."""
    T = len(shares)
    if T == 0:
        raise LamfastError("frame_share_chart: no frames")
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = _font(font_size)
    top, bottom, left = font_size + 12, height - 2 * font_size - 14, font_size + 14
    slot = (width - left - 8) / T
    peak = max(max(shares), 1e-12)
    for t, share in enumerate(shares):
        x0 = left + t * slot + slot * 0.15
        x1 = left + (t + 1) * slot - slot * 0.15
        y0 = bottom - (bottom - top) * share / peak
        draw.rectangle([x0, y0, x1, bottom], fill=(200, 30, 30) if t == target else (60, 90, 170))
        draw.text(((x0 + x1) / 2, max(2, y0 - 3)), f"{100 * share:.1f}%", fill=(0, 0, 0), font=font, anchor="md")
        draw.text(((x0 + x1) / 2, bottom + 4), f"t={t}", fill=(0, 0, 0), font=font, anchor="ma")
    draw.line([left, bottom, width - 8, bottom], fill=(0, 0, 0))
    draw.line([left, top, left, bottom], fill=(0, 0, 0))
    draw.text(((left + width) / 2, height - 4), "input frame t", fill=(0, 0, 0), font=font, anchor="md")
    label = "share of |attribution| (%)"
    side = Image.new("RGB", (bottom - top, font_size + 4), (255, 255, 255))
    ImageDraw.Draw(side).text(((bottom - top) / 2, 1), label, fill=(0, 0, 0), font=font, anchor="ma")
    img.paste(side.rotate(90, expand=True), (2, top))
    return img


def video_panels(result, hr: list[Image.Image], lr: list[Image.Image], *, alpha: float = 0.5,
                 zoom: int | None = None, kde: bool = True) -> dict[str, Image.Image]:
    """Every video LAM figure for a :class:`lamfast.VideoLAMResult`, keyed by file stem.

    Args:
        result: the video LAM result (saliency [T,H,W]).
        hr, lr: the T HR and LR frames (PIL); the window box is drawn on every HR frame at the
            window's place on the attributed output frame.
        alpha, zoom, kde: as :func:`lamfast.viz.lam_panels`.
    Returns:
        ``frame_<t>`` (one row per input frame: window position, abs map, abs blend, [KDE blend]),
        ``frame_share`` (the bar chart) and ``grid`` (the rows stacked, the chart below).
    """
    T = result.saliency.shape[0]
    if len(hr) != T or len(lr) != T:
        raise LamfastError(f"video_panels: {T} frames in the result, {len(hr)} HR and {len(lr)} LR frames given")
    zoom = zoom or result.scale
    h, w, size = result.window
    shares = [float(v) for v in result.frame_share]
    densities = result.kde() if kde else None
    out: dict[str, Image.Image] = {}
    rows = []
    for t in range(T):
        abs_map = saliency_image(result.saliency[t], zoom)
        size_px = abs_map.size
        position = window_image(hr[t], h, w, size)
        row = [position if position.size == size_px else position.resize(size_px, Image.BICUBIC), abs_map,
               blend(abs_map, lr[t], alpha)]
        if kde:
            row.append(blend(density_image(densities[t], zoom), lr[t], alpha))
        out[f"frame_{t}"] = grid(row)
        rows.append(row)
    size = rows[0][0].height
    font_size = max(14, size // 11)
    out["frame_share"] = frame_share_chart(shares, result.frame, font_size=font_size)
    titles = [PANEL_TITLES[k] for k in ROW_PANELS[:len(rows[0])]]
    target = "its one output frame" if result.frame is None else f"output frame t={result.frame}"
    labels = [f"t={t} ({100 * s:.1f}%)" for t, s in enumerate(shares)]
    figure = titled(rows, titles, f"{result_caption(result)}  on {target}", row_labels=labels)
    chart = frame_share_chart(shares, result.frame, width=min(figure.width, 120 * T + 80),
                              height=max(200, 3 * size // 2), font_size=font_size)
    canvas = Image.new("RGB", (figure.width, figure.height + chart.height), (255, 255, 255))
    canvas.paste(figure, (0, 0))
    canvas.paste(chart, ((figure.width - chart.width) // 2, figure.height))
    out["grid"] = canvas
    return out


__all__ = ["ROW_PANELS", "frame_share_chart", "video_panels"]
