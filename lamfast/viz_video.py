"""Video LAM figures: one row of the official panels per input frame, and the frame-share bar chart.

Every frame's abs map is drawn on the clip's joint scale (``saliency`` of
:class:`lamfast.VideoLAMResult`), so a frame the window barely uses is
drawn pale. The KDE of each frame is its own density (the official KDE,
peak 1) times the frame's share over the largest share, so the KDE panels
compare across frames too.
"""
from __future__ import annotations

import torch
from PIL import Image, ImageDraw

from lamfast.errors import LamfastError
from lamfast.viz import blend, density_image, grid, saliency_image, window_image

ROW_PANELS = ("window_position", "saliency_abs", "blend_abs", "blend_kde")


def frame_share_chart(shares: list[float], target: int | None, width: int = 360, height: int = 200) -> Image.Image:
    """A bar per input frame, its share of the clip's saliency in percent; the target frame in red."""
    T = len(shares)
    if T == 0:
        raise LamfastError("frame_share_chart: no frames")
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    top, bottom, left = 22, height - 22, 8
    slot = (width - 2 * left) / T
    peak = max(max(shares), 1e-12)
    for t, share in enumerate(shares):
        x0 = left + t * slot + slot * 0.15
        x1 = left + (t + 1) * slot - slot * 0.15
        y0 = bottom - (bottom - top) * share / peak
        draw.rectangle([x0, y0, x1, bottom], fill=(200, 30, 30) if t == target else (60, 90, 170))
        draw.text((x0, max(2, y0 - 14)), f"{100 * share:.1f}%", fill=(0, 0, 0))
        draw.text((x0, bottom + 4), f"t={t}", fill=(0, 0, 0))
    draw.line([left, bottom, width - left, bottom], fill=(0, 0, 0))
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
    for t in range(T):
        abs_map = saliency_image(result.saliency[t], zoom)
        size_px = abs_map.size
        position = window_image(hr[t], h, w, size)
        row = [position if position.size == size_px else position.resize(size_px, Image.BICUBIC), abs_map,
               blend(abs_map, lr[t], alpha)]
        if kde:
            row.append(blend(density_image(densities[t], zoom), lr[t], alpha))
        out[f"frame_{t}"] = grid(row)
    out["frame_share"] = frame_share_chart(shares, result.frame)
    rows = [out[f"frame_{t}"] for t in range(T)]
    chart = out["frame_share"]
    width = rows[0].width
    canvas = Image.new("RGB", (width, sum(r.height for r in rows) + chart.height), (255, 255, 255))
    y = 0
    for r in rows:
        canvas.paste(r, (0, y))
        y += r.height
    canvas.paste(chart, (0, y))
    out["grid"] = canvas
    return out


__all__ = ["ROW_PANELS", "frame_share_chart", "video_panels"]
