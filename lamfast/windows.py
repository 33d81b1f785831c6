"""Window specs for multi-window LAM: explicit, grid, strongest edges, random.

A window is ``(h, w, size)``: top-left row and column and side, in SR pixels.
"""
from __future__ import annotations

import random
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

Window = tuple[int, int, int]


def explicit(windows: Iterable[Sequence[int]], size: int = 16) -> list[Window]:
    """``[(h, w)]`` or ``[(h, w, size)]`` as windows; pairs get ``size``."""
    out = []
    for item in windows:
        if len(item) == 2:
            out.append((int(item[0]), int(item[1]), int(size)))
        elif len(item) == 3:
            out.append((int(item[0]), int(item[1]), int(item[2])))
        else:
            raise ValueError(f"a window is (h, w) or (h, w, size), got {tuple(item)}")
    return out


def grid(sr_shape: tuple[int, int], size: int, stride: int | None = None) -> list[Window]:
    """Windows of ``size`` every ``stride`` pixels (default: ``size``), row-major, all inside."""
    stride = stride or size
    if size < 2 or stride < 1:
        raise ValueError(f"grid windows need size >= 2 and stride >= 1, got size {size}, stride {stride}")
    sH, sW = sr_shape
    return [(h, w, size) for h in range(0, sH - size + 1, stride) for w in range(0, sW - size + 1, stride)]


def edge_strength(sr: torch.Tensor) -> torch.Tensor:
    """LAM's objective density: per-pixel forward-difference gradient magnitude summed over channels.

    Args:
        sr: [3,sH,sW].
    Returns:
        [sH-1, sW-1].
    """
    y = sr[None].float()
    hg = (y[:, :, :-1, :] - y[:, :, 1:, :]) ** 2
    wg = (y[:, :, :, :-1] - y[:, :, :, 1:]) ** 2
    return (hg[:, :, :, :-1] + wg[:, :, :-1, :]).sqrt()[0].sum(0)


def top_edges(sr: torch.Tensor, size: int, k: int, stride: int | None = None) -> list[Window]:
    """The ``k`` grid windows (stride default ``size // 2``) whose LAM objective is largest.

    Ties keep row-major order, so the choice is deterministic.
    """
    stride = stride or max(1, size // 2)
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
    return [candidates[i] for i in order[:k]]


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
    raise ValueError(
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
        return top_edges(sr, spec["size"], spec["k"], spec["stride"])
    if kind == "random":
        return random_windows(shape, spec["size"], spec["n"], spec["seed"])
    raise ValueError(f"unknown window spec kind {kind!r}")
