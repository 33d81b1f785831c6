"""Effective receptive fields of image-to-image networks, as RepLKNet defines them.

For each image: the ReLU of the output's centre pixel (at ``sH // 2, sW // 2``),
summed over channels, is differentiated w.r.t. the input; the gradient is
ReLU'd and summed over channels. The map is the mean over images. SR papers
plot it next to LAM.

The high-contribution area ratio at a threshold t follows RepLKNet's
``analyze_erf``: on the map shown, ``log10(x + 1) / max``, the smallest
centred square (sides 3, 5, 7, ...) holding more than t of the total, as a
fraction of the input area. None when no such square fits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from PIL import Image, ImageDraw
from torch import nn

from lamfast.descriptor import module_of
from lamfast.modelstate import attribution_state, call_model, check_device, model_dtype

from lamfast.errors import LamfastError

THRESHOLDS = (0.2, 0.3, 0.5, 0.99)


@dataclass
class ERFResult:
    """One model's ERF.

    Attributes:
        map: [H,W] float64, the mean over images of the ReLU'd input gradient (channels summed).
        ratios: threshold -> (square side, fraction of the input area), or (None, None).
        images: how many images were averaged.
    """

    map: torch.Tensor
    ratios: dict[float, tuple[int | None, float | None]] = field(default_factory=dict)
    images: int = 0

    def summary(self) -> dict:
        return {"images": self.images, "size": list(self.map.shape),
                "area_ratio": {str(t): {"side": s, "ratio": r} for t, (s, r) in self.ratios.items()}}


def shown_map(erf_map: torch.Tensor) -> torch.Tensor:
    """``log10(x + 1)`` of a map, the scale the ERF is looked at (not yet normalised)."""
    return torch.log10(erf_map.double() + 1.0)


def area_ratios(erf_map: torch.Tensor, thresholds: Sequence[float] = THRESHOLDS) -> dict:
    """RepLKNet's high-contribution area ratios of a raw ERF map [H,W] (see the module docstring)."""
    data = shown_map(erf_map).cpu().numpy()
    peak = data.max()
    if peak > 0:
        data = data / peak
    h, w = data.shape
    total = data.sum()
    out: dict = {}
    for t in thresholds:
        out[t] = (None, None)
        if total <= 0:
            continue
        for i in range(1, h // 2):
            square = data[h // 2 - i:h // 2 + i + 1, w // 2 - i:w // 2 + i + 1].sum()
            if square / total > t:
                side = 2 * i + 1
                out[t] = (side, side / h * side / w)
                break
    return out


def erf(model: "nn.Module | ModelDescriptor", images: torch.Tensor | Sequence[torch.Tensor], *, batch_size: int = 8,
        device: str | torch.device | None = None) -> ERFResult:
    """The ERF of ``model`` over ``images``.

    Args:
        model: an nn.Module or a ModelDescriptor: [B,C,H,W] to [B,C',H',W'] (an SR model, or any dense
            network). Never moved or left changed.
        images: [N,C,H,W], or a list of [C,H,W] of one size, in the model's input range.
        batch_size: inputs (images) per forward/backward pass.
        device: where to run: the model's device (the default); naming another is an error.
    Returns:
        ERFResult (map on the CPU, float64).
    Raises:
        LamfastError: no images, images of different sizes, or an output that is not a [B,C,H,W] map.

    Example:
        >>> import torch, lamfast
        >>> r = lamfast.erf(lamfast.load_model(), torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0)))
        >>> r.map.shape, r.images, r.ratios[0.99][0] is not None
        (torch.Size([24, 24]), 2, True)
    """
    if isinstance(images, torch.Tensor):
        if images.dim() == 3:
            images = images[None]
        stack = images
    else:
        images = list(images)
        if not images:
            raise LamfastError("erf needs at least one image")
        sizes = {tuple(im.shape) for im in images}
        if len(sizes) != 1:
            raise LamfastError(f"erf averages maps over images of one size, got sizes {sorted(sizes)}")
        stack = torch.stack(images)
    if stack.dim() != 4 or stack.shape[0] == 0:
        raise LamfastError(f"images must be [N,C,H,W] with N >= 1, got {tuple(stack.shape)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise LamfastError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    model = module_of(model)
    dev = check_device(model, device)
    dtype = model_dtype(model)
    total = torch.zeros(stack.shape[-2:], dtype=torch.float64, device=dev)
    with attribution_state(model):
        for start in range(0, stack.shape[0], batch_size):
            x = stack[start:start + batch_size].to(dev, dtype).detach().requires_grad_(True)
            with torch.enable_grad():
                out = call_model(model, x.clone(), f"a batch of {x.shape[0]} {x.shape[-2]}x{x.shape[-1]} images")
                if not isinstance(out, torch.Tensor) or out.dim() != 4:
                    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                    raise LamfastError(f"erf needs a model returning a [B,C,H,W] map, got {shape}")
                centre = torch.relu(out[:, :, out.shape[2] // 2, out.shape[3] // 2]).sum()
                (grad,) = torch.autograd.grad(centre, x)
            total += torch.relu(grad).sum(dim=(0, 1)).double()
    mean = (total / stack.shape[0]).cpu()
    return ERFResult(mean, area_ratios(mean), int(stack.shape[0]))


def erf_figure(results: dict[str, ERFResult], panel: int = 256) -> Image.Image:
    """One panel per model: ``log10(x + 1)`` normalised to [0, 1] per model, as RepLKNet rescales it for
    comparing models, all drawn with one colour scale (seismic, 0 dark blue to 1 dark red; the bar on the right)."""
    from lamfast.viz import seismic

    title_h, gap, bar_w = 18, 8, 14
    canvas = Image.new("RGB", (len(results) * (panel + gap) + bar_w + 24, panel + title_h), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (name, r) in enumerate(results.items()):
        m = shown_map(r.map)
        peak = float(m.max())
        m = m / peak if peak > 0 else m
        img = Image.fromarray(seismic(m.float())).resize((panel, panel), Image.NEAREST)
        x = i * (panel + gap)
        canvas.paste(img, (x, title_h))
        draw.text((x + 2, 2), name[-40:], fill=(0, 0, 0))
    x = len(results) * (panel + gap)
    bar = seismic(torch.linspace(1.0, 0.0, panel)[:, None].expand(panel, bar_w))
    canvas.paste(Image.fromarray(bar), (x, title_h))
    draw.text((x + bar_w + 2, title_h), "1", fill=(0, 0, 0))
    draw.text((x + bar_w + 2, title_h + panel - 12), "0", fill=(0, 0, 0))
    return canvas


__all__ = ["ERFResult", "THRESHOLDS", "area_ratios", "erf", "erf_figure", "shown_map"]
