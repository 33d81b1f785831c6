"""The CEM figure: the signed effect map over the input, the ROI drawn, counts and range in the title.

The map is drawn as the official ``generate_CE_map`` draws it: the effect clipped to ``±bound`` dB
(2.5 for SR, 1 for denoising, 2 for deraining, the paper's), mapped by ``sign(e)·|e|^(1/1.2) /
bound^(1/1.2)`` onto matplotlib's ``seismic`` (blue: the block hurts the ROI, red: it helps), each
block one cell at output scale; the ROI's blocks are painted green, and the map is blended with the
upscaled input at 10 %. A diverging colour bar in dB sits on the right.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from lamfast.cem.result import CEMResult
from lamfast.errors import LamfastError
from lamfast.imageio import to_pil
from lamfast.viz import _font, seismic, titled

BOUND = {"sr": 2.5, "denoise": 1.0, "derain": 2.0}
POWER = 1 / 1.2
ROI_GREEN = (0, 255, 0)
MIN_SIDE = 256  # panels smaller than this are zoomed (nearest for the map) to at least this side


def mapped(effect: np.ndarray, bound: float) -> np.ndarray:
    """The official colour mapping of effects (dB) to [-1, 1]: clipped to ±bound, signed power 1/1.2.

    Example:
        >>> import numpy as np
        >>> from lamfast.cem.figure import mapped
        >>> mapped(np.array([-5.0, 0.0, 2.5]), 2.5).round(6).tolist()
        [-1.0, 0.0, 1.0]
    """
    e = np.clip(effect, -bound, bound)
    return np.sign(e) * np.abs(e) ** POWER / bound ** POWER


def signed_colour_bar(height: int, bound: float, font_size: int = 12) -> Image.Image:
    """A vertical seismic bar from +bound (top) to -bound, ticks in dB at their mapped positions."""
    bar_w, pad = max(10, font_size), max(6, font_size // 2 + 1)
    m = mapped(np.linspace(bound, -bound, height), bound)
    values = torch.from_numpy(0.5 + 0.5 * m).float()[:, None].expand(height, bar_w)
    font = _font(font_size)
    out = Image.new("RGB", (bar_w + 6 + 4 * font_size, height + 2 * pad + font_size + 4), "white")
    draw = ImageDraw.Draw(out)
    draw.text((0, 0), "dB", fill="black", font=font)
    top = pad + font_size + 4
    out.paste(Image.fromarray(seismic(values)), (0, top))
    for t in (bound, bound / 2, 0.0, -bound / 2, -bound):
        y = top + round((1 - (mapped(np.array([t]), bound)[0] + 1) / 2) * (height - 1))
        draw.line([(bar_w, y), (bar_w + 3, y)], fill="black")
        draw.text((bar_w + 5, y), f"{t:+.3g}" if t else "0", fill="black", font=font, anchor="lm")
    return out


def cem_panels(result: CEMResult, lr: torch.Tensor, *, bound: float | None = None,
               alpha: float = 0.1) -> tuple[Image.Image, Image.Image]:
    """(the input upscaled to the output's size with the ROI boxed, the effect map blended on it).

    Args:
        result: from :func:`lamfast.cem`; lr: the input [C,H,W] it ran on.
        bound: the colour scale's end in dB (default by task: 2.5 SR, 1 denoise, 2 derain).
        alpha: the input's weight in the blend (the official 0.1).
    """
    if not isinstance(lr, torch.Tensor) or lr.dim() != 3:
        raise LamfastError("lr must be the input [C,H,W] the result was computed on", param="lr")
    s, b = result.scale, result.block
    H, W = lr.shape[-2:]
    nH, nW = result.effect.shape
    if (nH, nW) != (-(-H // b), -(-W // b)):
        raise LamfastError(f"lr is {H}x{W}, but the result's {nH}x{nW} blocks of {b} px are of another input",
                           param="lr")
    bound = bound or BOUND.get(result.params.get("task", "sr"), 2.5)
    colours = seismic(torch.from_numpy(0.5 + 0.5 * mapped(result.effect, bound)).float())
    colours[result.roi_blocks] = ROI_GREEN
    z = max(1, MIN_SIDE // max(H * s, W * s))  # small images are drawn larger, block for block
    cell = s * b * z
    grid = Image.fromarray(colours).resize((nW * cell, nH * cell), Image.NEAREST).crop((0, 0, W * s * z, H * s * z))
    base = to_pil(lr.detach().float().cpu().clamp(0, 1)).convert("RGB").resize((W * s * z, H * s * z), Image.BICUBIC)
    blend = Image.fromarray((np.asarray(grid, np.float64) * (1 - alpha) + np.asarray(base, np.float64) * alpha)
                            .astype(np.uint8))
    h, w, size = (v * z for v in result.roi)
    boxed = base.copy()
    for img in (boxed, blend):
        ImageDraw.Draw(img).rectangle([w, h, w + size - 1, h + size - 1], outline=ROI_GREEN,
                                      width=max(1, W * s * z // 128))
    return boxed, blend


def cem_caption(result: CEMResult) -> str:
    """The figure's title line: ROI, PSNR, counts, range."""
    c = result.counts
    lo, hi = result.effect_range
    h, w, size = result.roi
    return (f"CEM of the {size}x{size} ROI at ({h}, {w})  PSNR {result.psnr:.2f} dB  "
            f"blocks: {c['positive']} help, {c['negative']} hurt, {c['zero']} none  "
            f"effect {lo:+.2f} to {hi:+.2f} dB (range {hi - lo:.2f} dB)  "
            f"task {result.params.get('task', 'sr')}, block {result.params.get('block_size')} px  "
            f"{result.params.get('coarse')}+{result.params.get('fine')} interventions, tol {result.params.get('tol')} dB")


def cem_figure(result: CEMResult, lr: torch.Tensor, *, bound: float | None = None, alpha: float = 0.1,
               title: str | None = None) -> Image.Image:
    """The paper figure of one CEM result: the input with the ROI and the signed map, titled, with the
    colour bar in dB.

    Example:
        >>> import numpy as np, torch
        >>> from lamfast.cem import CEMResult
        >>> from lamfast.cem.figure import cem_figure
        >>> effect = np.zeros((8, 8)); effect[2, 3], effect[5, 5] = 1.5, -0.4
        >>> roi = np.zeros((8, 8), bool); roi[3:5, 3:5] = True
        >>> r = CEMResult(effect=effect, psnr=28.0, roi=(24, 24, 16), scale=4, block=2, roi_blocks=roi)
        >>> cem_figure(r, torch.rand(3, 16, 16)).size[0] > 2 * 64
        True
    """
    bound = bound or BOUND.get(result.params.get("task", "sr"), 2.5)
    boxed, blend = cem_panels(result, lr, bound=bound, alpha=alpha)
    body = titled([boxed, blend], ["input, ROI", "causal effect"], title or cem_caption(result), bar=False)
    bar = signed_colour_bar(max(120, min(blend.height, 512) - 40), bound, font_size=max(12, blend.height // 22))
    out = Image.new("RGB", (body.width + bar.width + 8, max(body.height, bar.height)), "white")
    out.paste(body, (0, 0))
    out.paste(bar, (body.width + 4, body.height - blend.height))
    return out


__all__ = ["BOUND", "cem_caption", "cem_figure", "cem_panels", "mapped", "signed_colour_bar"]
