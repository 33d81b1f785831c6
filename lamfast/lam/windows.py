"""LAM windows: explicit, grid, strongest edges, random; and their checks.

A window is ``(h, w, size)``: top-left row and column and side, in SR pixels.
"""
from __future__ import annotations

import operator
import random
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F

from lamfast.lam.errors import LAMError
from lamfast.lam.objective import Window, edge_strength

from lamfast.errors import LamfastError


def _integer(value: Any) -> Any:
    # numpy and torch integers become int; anything else is left for
    # check_window to refuse by name (1.5 is not silently 1).
    try:
        return operator.index(value)
    except TypeError:
        return value


def explicit(windows: Iterable[Sequence[int]], size: int = 16) -> list[Window]:
    """``[(h, w)]`` or ``[(h, w, size)]`` as windows; pairs get ``size``."""
    out = []
    for item in windows:
        item = tuple(item)
        if len(item) == 2:
            item = (*item, size)
        elif len(item) != 3:
            raise LamfastError(f"a window is (h, w) or (h, w, size), got {item}")
        out.append(tuple(_integer(v) for v in item))
    return out


def check_window(h: Any, w: Any, size: Any, sr_shape: tuple[int, int] | None = None) -> None:
    """Raise LAMError for a window that is malformed or outside the SR image."""
    for name, value, low in (("window_size", size, 2), ("h", h, 0), ("w", w, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise LAMError(f"{name} must be an integer >= {low}, got {value!r}", param=name)
    if sr_shape is not None:
        sH, sW = sr_shape
        if h + size > sH or w + size > sW:
            raise LAMError(
                f"window (h={h}, w={w}, size={size}) lies outside the {sH}x{sW} SR image "
                f"(need h + size <= {sH} and w + size <= {sW})",
                param="window",
            )


def grid(sr_shape: tuple[int, int], size: int, stride: int | None = None) -> list[Window]:
    """Windows of ``size`` every ``stride`` pixels (default: ``size``), row-major, all inside."""
    stride = stride or size
    if size < 2 or stride < 1:
        raise LamfastError(f"grid windows need size >= 2 and stride >= 1, got size {size}, stride {stride}")
    sH, sW = sr_shape
    return [(h, w, size) for h in range(0, sH - size + 1, stride) for w in range(0, sW - size + 1, stride)]


def top_edges(sr: torch.Tensor, size: int, k: int, stride: int | None = None,
              min_distance: int | None = None) -> list[Window]:
    """The ``k`` grid windows (stride default ``size // 2``) whose LAM objective is largest, kept
    ``min_distance`` apart.

    The score is :func:`lamfast.lam.objective.edge_strength` summed over the
    window, i.e. the compat objective on the SR image itself. Windows are taken
    in score order (greedy non-maximum suppression): one is kept only when its
    top-left corner lies at least ``min_distance`` SR pixels from every kept
    one's in row or column (Chebyshev distance). The default, ``size``, keeps
    windows from overlapping, so one textured patch is not counted many times;
    0 keeps the ``k`` best, overlapping or not. Fewer than ``k`` come back where
    fewer fit.

    Ties keep row-major order, so the choice is deterministic.
    """
    stride = stride or max(1, size // 2)
    min_distance = size if min_distance is None else min_distance
    if isinstance(min_distance, bool) or not isinstance(min_distance, int) or min_distance < 0:
        raise LamfastError(f"min_distance must be an integer >= 0, got {min_distance!r}", param="min_distance")
    candidates = grid(tuple(sr.shape[-2:]), size, stride)
    if not candidates:
        return []
    # Pad G back to the SR size with zeros: a window on the last row/column
    # sums the cropped G exactly as the objective does.
    e = F.pad(edge_strength(sr), (0, 1, 0, 1))
    sums = F.avg_pool2d(e[None, None].double(), size, stride=1)[0, 0] * (size * size)
    hs = torch.tensor([c[0] for c in candidates])
    ws = torch.tensor([c[1] for c in candidates])
    scores = sums[hs, ws].tolist()
    order = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
    kept: list[Window] = []
    for i in order:
        if len(kept) == k:
            break
        h, w, _ = candidates[i]
        if all(max(abs(h - a), abs(w - b)) >= min_distance for a, b, _ in kept):
            kept.append(candidates[i])
    return kept


def random_windows(sr_shape: tuple[int, int], size: int, n: int, seed: int = 0) -> list[Window]:
    """``n`` distinct windows at random positions inside the image (seeded)."""
    sH, sW = sr_shape
    if size > min(sH, sW):
        return []
    rng = random.Random(seed)
    positions = (sH - size + 1) * (sW - size + 1)
    picks = rng.sample(range(positions), min(n, positions))
    return [(p // (sW - size + 1), p % (sW - size + 1), size) for p in picks]


def parse_spec(spec: str) -> dict:
    """Parse a CLI window spec.

    - ``list:H,W;H,W[:SIZE]``: explicit windows
    - ``grid:SIZE[:STRIDE]``
    - ``top:K:SIZE[:STRIDE]``: the K windows with the strongest edges
    - ``random:N:SIZE[:SEED]``
    """
    kind, _, rest = spec.partition(":")
    parts = rest.split(":") if rest else []
    try:
        if kind == "list" and parts:
            pairs = [tuple(int(v) for v in item.split(",")) for item in parts[0].split(";") if item]
            size = int(parts[1]) if len(parts) > 1 else 16
            return {"kind": "list", "windows": explicit(pairs, size)}
        if kind == "grid" and 1 <= len(parts) <= 2:
            return {"kind": "grid", "size": int(parts[0]), "stride": int(parts[1]) if len(parts) > 1 else None}
        if kind == "top" and 2 <= len(parts) <= 3:
            return {"kind": "top", "k": int(parts[0]), "size": int(parts[1]),
                    "stride": int(parts[2]) if len(parts) > 2 else None}
        if kind == "random" and 2 <= len(parts) <= 3:
            return {"kind": "random", "n": int(parts[0]), "size": int(parts[1]),
                    "seed": int(parts[2]) if len(parts) > 2 else 0}
    except ValueError:
        pass
    raise LamfastError(
        f"bad window spec {spec!r}: use list:H,W;H,W[:SIZE], grid:SIZE[:STRIDE], top:K:SIZE[:STRIDE] or random:N:SIZE[:SEED]"
    )


def resolve(spec: dict, sr: torch.Tensor) -> list[Window]:
    """The windows a parsed spec gives for one SR image [3,sH,sW]."""
    shape = tuple(sr.shape[-2:])
    kind = spec["kind"]
    if kind == "list":
        return list(spec["windows"])
    if kind == "grid":
        return grid(shape, spec["size"], spec["stride"])
    if kind == "top":
        return top_edges(sr, spec["size"], spec["k"], spec["stride"], spec.get("min_distance"))
    if kind == "random":
        return random_windows(shape, spec["size"], spec["n"], spec["seed"])
    raise LamfastError(f"unknown window spec kind {kind!r}")
