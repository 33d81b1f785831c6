"""Procedural shapes-on-texture images: the bundled classifier's data and its localisation test.

Each image holds one filled shape (circle, square, triangle, cross) of a
random size, colour and place on a random striped-and-noisy background; the
label is the shape and the box is where it lies. Deterministic per seed.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CLASSES = ("circle", "square", "triangle", "cross")


def _background(gen: torch.Generator, size: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    angle = float(torch.rand(1, generator=gen)) * math.pi
    freq = 0.2 + 0.6 * float(torch.rand(1, generator=gen))
    stripes = 0.5 + 0.5 * torch.sin(freq * (xx * math.cos(angle) + yy * math.sin(angle)))
    base = torch.rand(3, 1, 1, generator=gen) * 0.6 + 0.2
    noise = F.avg_pool2d(torch.rand(1, 3, size, size, generator=gen), 3, 1, 1)[0]
    return (0.5 * base + 0.25 * stripes[None] * torch.rand(3, 1, 1, generator=gen) + 0.25 * noise).clamp(0, 1)


def _mask(kind: int, size: int, cy: float, cx: float, r: float) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    dy, dx = yy - cy, xx - cx
    if kind == 0:
        return dy**2 + dx**2 <= r**2
    if kind == 1:
        return (dy.abs() <= r * 0.85) & (dx.abs() <= r * 0.85)
    if kind == 2:
        return (dy <= r * 0.8) & (dy >= -r) & (dx.abs() <= (dy + r) * 0.55)
    return ((dy.abs() <= r * 0.3) & (dx.abs() <= r)) | ((dx.abs() <= r * 0.3) & (dy.abs() <= r))


def make_shapes(n: int, seed: int, size: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` images [n,3,size,size] in [0,1], labels [n], boxes [n,4] as (top, left, bottom, right) inclusive."""
    gen = torch.Generator().manual_seed(seed)
    images, labels, boxes = [], [], []
    for _ in range(n):
        img = _background(gen, size)
        kind = int(torch.randint(0, len(CLASSES), (1,), generator=gen))
        r = 6 + float(torch.rand(1, generator=gen)) * 6
        cy = r + float(torch.rand(1, generator=gen)) * (size - 2 * r - 1)
        cx = r + float(torch.rand(1, generator=gen)) * (size - 2 * r - 1)
        mask = _mask(kind, size, cy, cx, r)
        colour = torch.rand(3, 1, 1, generator=gen)
        colour = torch.where(colour > 0.5, colour * 0.3 + 0.7, colour * 0.3)  # saturated, so the shape stands out
        img = torch.where(mask[None], colour.expand(3, size, size), img)
        ys, xs = mask.nonzero(as_tuple=True)
        images.append(img)
        labels.append(kind)
        boxes.append([int(ys.min()), int(xs.min()), int(ys.max()), int(xs.max())])
    return torch.stack(images), torch.tensor(labels), torch.tensor(boxes)
