"""Where FAIG's top filters sit in the network, as the paper draws it: one column per layer (each 4-D
``...weight`` in order), its filters top to bottom in ``weight.reshape(-1, kh, kw)`` order, the top
filters marked; under each column, the share of its filters that are among the top (bars scaled to the
largest share, whose value is written beside them)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from lamfast.errors import LamfastError
from lamfast.viz import _font

COLUMN_H = 320
MARK = (192, 57, 43)


def layer_counts(filters: Sequence[tuple[str, int, int]], chosen: Sequence[int]) -> list[tuple[str, int, int]]:
    """Per layer, in order: (name, its filters, of those chosen).

    Example:
        >>> from lamfast.filter_figure import layer_counts
        >>> layer_counts([("a", 0, 0), ("a", 0, 1), ("b", 0, 0)], [1, 2])
        [('a', 2, 1), ('b', 1, 1)]
    """
    names: list[str] = []
    total: dict[str, int] = {}
    for name, _, _ in filters:
        if name not in total:
            names.append(name)
            total[name] = 0
        total[name] += 1
    hit = {n: 0 for n in names}
    for i in chosen:
        hit[filters[int(i)][0]] += 1
    return [(n, total[n], hit[n]) for n in names]


def filter_layers_figure(filters: Sequence[tuple[str, int, int]], chosen: Sequence[int], *, title: str = "",
                         column_w: int | None = None) -> Image.Image:
    """The figure (PIL): layers left to right, the ``chosen`` filters marked in red in each column.

    Example:
        >>> from lamfast.filter_figure import filter_layers_figure
        >>> filters = [("a", o, i) for o in range(4) for i in range(3)] + [("b", o, 0) for o in range(3)]
        >>> filter_layers_figure(filters, [0, 5, 13], title="top 3").size[1] > 320
        True
    """
    if not filters:
        raise LamfastError("no filters to draw", param="filters")
    counts = layer_counts(filters, chosen)
    first: dict[str, int] = {}
    for k, (name, _, _) in enumerate(filters):
        first.setdefault(name, k)
    font = _font(12)
    column_w = column_w or max(8, min(40, 640 // len(counts)))  # a few layers wide, many narrow
    left, top = 50, 30 if title else 10
    footer = f"layers 1-{len(counts)} (each 4-D weight, in order)"
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = max(left + column_w * len(counts) + 40, left + measure.textlength(title, font=font),
                left + measure.textlength(footer, font=font)) + 12
    out = Image.new("RGB", (int(width), top + COLUMN_H + 64), "white")
    draw = ImageDraw.Draw(out)
    if title:
        draw.text((left, 6), title, fill="black", font=font)
    peak = max(hits / n for _, n, hits in counts) or 1.0  # the bars' scale: the largest share, labelled
    for j, (name, n, hits) in enumerate(counts):
        x0 = left + j * column_w
        draw.rectangle([x0 + 1, top, x0 + column_w - 2, top + COLUMN_H], fill=(236, 236, 236))
        marks = np.zeros(COLUMN_H, bool)
        for i in chosen:
            fname = filters[int(i)][0]
            if fname == name:
                marks[int((int(i) - first[name]) * COLUMN_H / n)] = True
        for y in np.nonzero(marks)[0]:
            draw.line([(x0 + 1, top + y), (x0 + column_w - 2, top + y)], fill=MARK)
        bar = int(round(hits / n / peak * 34))
        draw.rectangle([x0 + 2, top + COLUMN_H + 46 - bar, x0 + column_w - 3, top + COLUMN_H + 46], fill=MARK)
    draw.text((4, top), "filters", fill="black", font=font)
    draw.text((4, top + COLUMN_H + 10), "share", fill="black", font=font)
    draw.text((4, top + COLUMN_H + 24), "in top", fill="black", font=font)
    draw.text((left + column_w * len(counts) + 2, top + COLUMN_H + 8), f"{peak:.1%}", fill="black", font=font)
    draw.text((left, top + COLUMN_H + 48), footer, fill="black", font=font)
    return out


__all__ = ["filter_layers_figure", "layer_counts"]
