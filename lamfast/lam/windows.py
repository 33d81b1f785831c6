"""LAM windows and window specs: explicit lists, grids, the strongest edges, random ones.

A window is ``(h, w, size)``: top-left row and column and side, in SR pixels.
A window spec (:class:`WindowSpec`) chooses the windows of an image from its
SR output; :func:`parse_windows` reads one from text. One definition serves
the API (``lam_windows(model, image, "grid:16")``), ``lamfast run --windows``,
``lamfast explore`` and the DI map (:func:`lamfast.di_map`):

- ``list:H,W;H,W[:SIZE]``: the windows given (:class:`WindowList`);
- ``grid:SIZE[:STRIDE]``: every ``STRIDE`` pixels (default ``SIZE``) from the
  top-left corner, plus one flush with the border where the last would not
  reach it, so every pixel of the SR image lies in a window (:class:`Grid`);
- ``top:K:SIZE[:STRIDE[:MIN_DISTANCE]]``: the K windows with the strongest
  edges, kept apart (:class:`TopEdges`);
- ``random:N:SIZE[:SEED]``: N distinct windows at random (:class:`RandomWindows`).
"""
from __future__ import annotations

import operator
import random
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F

from lamfast.errors import LAMError, LamfastError
from lamfast.lam.objective import Window, edge_strength


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
            raise LamfastError(f"a window is (h, w) or (h, w, size), got {item}", param="windows")
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


def _at_least(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise LamfastError(f"{name} must be an integer >= {low}, got {value!r}", param=name)


def grid_positions(extent: int, size: int, stride: int) -> list[int]:
    """Window starts along one axis: ``0, stride, 2·stride, ...`` and, where the last does not end at
    ``extent``, one more at ``extent - size``; [] where ``size`` exceeds ``extent``."""
    if size > extent:
        return []
    starts = list(range(0, extent - size + 1, stride))
    if starts[-1] + size < extent:
        starts.append(extent - size)
    return starts


class WindowSpec:
    """How an image's windows are chosen from its SR output [C,sH,sW] (see the module docstring)."""

    size: int

    def resolve(self, sr: torch.Tensor) -> list[Window]:
        """The windows for one SR image [C,sH,sW] (only its shape matters to all but :class:`TopEdges`)."""
        raise NotImplementedError

    @property
    def count(self) -> int | None:
        """Windows per image where the spec fixes it (at most that many for ``top`` and ``random``), else None."""
        return None

    @property
    def canonical(self) -> str:
        """The spec's text with every default filled in (what stores key results by)."""
        raise NotImplementedError

    @property
    def text(self) -> str:
        """The spec's text as it is usually written."""
        raise NotImplementedError

    @property
    def words(self) -> str:
        """The spec in words, for captions: e.g. "the 8 strongest-edge windows of 16 px, at least 16 px apart"."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class WindowList(WindowSpec):
    """The windows given, ``(h, w, size)`` each.

    Example:
        >>> from lamfast.lam.windows import parse_windows
        >>> parse_windows("list:8,8;40,24:16").resolve(torch.zeros(3, 64, 64))
        [(8, 8, 16), (40, 24, 16)]
    """

    windows: tuple[Window, ...]

    def resolve(self, sr: torch.Tensor) -> list[Window]:
        return list(self.windows)

    @property
    def size(self) -> int:  # type: ignore[override]
        return max(s for _, _, s in self.windows)

    @property
    def count(self) -> int:
        return len(self.windows)

    @property
    def canonical(self) -> str:
        return "list:" + ";".join(f"{h},{w},{s}" for h, w, s in self.windows)

    @property
    def words(self) -> str:
        n, sizes = len(self.windows), sorted({s for _, _, s in self.windows})
        return f"{n} given window{'s' if n != 1 else ''} of {'/'.join(map(str, sizes))} px"

    @property
    def text(self) -> str:
        sizes = {s for _, _, s in self.windows}
        if len(sizes) == 1:
            return f"list:{';'.join(f'{h},{w}' for h, w, _ in self.windows)}:{sizes.pop()}"
        return "list:" + ";".join(f"{h},{w},{s}" for h, w, s in self.windows)


@dataclass(frozen=True)
class Grid(WindowSpec):
    """Windows of ``size`` every ``stride`` SR pixels (default ``size``), row-major, the last row and
    column flush with the border.

    Example:
        >>> from lamfast.lam.windows import Grid
        >>> g = Grid(16)  # stride: the window size
        >>> g.positions((40, 32))
        ([0, 16, 24], [0, 16])
        >>> len(g.resolve(torch.zeros(3, 40, 32)))
        6
    """

    size: int
    stride: int | None = None  # None: the window size

    def __post_init__(self) -> None:
        _at_least("window_size", self.size, 2)
        if self.stride is None:
            object.__setattr__(self, "stride", self.size)
        _at_least("stride", self.stride, 1)

    @property
    def step(self) -> int:
        return self.stride

    def positions(self, sr_shape: Sequence[int]) -> tuple[list[int], list[int]]:
        """(window rows, window columns) on an SR image of ``sr_shape`` (sH, sW)."""
        sH, sW = sr_shape[-2:]
        return grid_positions(sH, self.size, self.step), grid_positions(sW, self.size, self.step)

    def resolve(self, sr: torch.Tensor) -> list[Window]:
        rows, cols = self.positions(tuple(sr.shape[-2:]))
        return [(h, w, self.size) for h in rows for w in cols]

    @property
    def canonical(self) -> str:
        return f"grid:{self.size}:{self.step}"

    @property
    def text(self) -> str:
        return f"grid:{self.size}" + (f":{self.stride}" if self.stride != self.size else "")

    @property
    def words(self) -> str:
        return f"every window of {self.size} px, {self.stride} px apart"


@dataclass(frozen=True)
class TopEdges(WindowSpec):
    """The ``k`` windows whose LAM objective on the image is largest, kept ``min_distance`` apart.

    Candidates are the windows of ``size`` every ``stride`` SR pixels (default ``size // 2``); the score
    is :func:`lamfast.lam.objective.edge_strength` summed over the window, i.e. the compat objective on
    the SR image itself. Windows are taken in score order (greedy non-maximum suppression): one is
    kept only when its top-left corner lies at least ``min_distance`` SR pixels from every kept one's
    in row or column (Chebyshev distance). The default, ``size``, keeps windows from overlapping, so
    one textured patch is not counted many times; 0 keeps the ``k`` best. Fewer than ``k`` come back
    where fewer fit. Ties keep row-major order, so the choice is deterministic.

    Example:
        >>> from lamfast.lam.windows import TopEdges
        >>> sr = torch.zeros(3, 64, 64); sr[:, 40:, 20:] = 1.0  # one corner of edges
        >>> TopEdges(k=2, size=16).resolve(sr)
        [(32, 16, 16), (24, 32, 16)]
    """

    k: int
    size: int
    stride: int | None = None  # None: half the window size
    min_distance: int | None = None  # None: the window size

    def __post_init__(self) -> None:
        _at_least("k", self.k, 1)
        _at_least("window_size", self.size, 2)
        if self.stride is None:
            object.__setattr__(self, "stride", max(1, self.size // 2))
        if self.min_distance is None:
            object.__setattr__(self, "min_distance", self.size)
        _at_least("stride", self.stride, 1)
        _at_least("min_distance", self.min_distance, 0)

    @property
    def count(self) -> int:
        return self.k

    @property
    def distance(self) -> int:
        return self.min_distance

    def resolve(self, sr: torch.Tensor) -> list[Window]:
        stride = self.stride
        sH, sW = sr.shape[-2:]
        candidates = [(h, w, self.size) for h in range(0, sH - self.size + 1, stride)
                      for w in range(0, sW - self.size + 1, stride)]
        if not candidates:
            return []
        # Pad G back to the SR size with zeros: a window on the last row/column
        # sums the cropped G exactly as the objective does.
        e = F.pad(edge_strength(sr), (0, 1, 0, 1))
        sums = F.avg_pool2d(e[None, None].double(), self.size, stride=1)[0, 0] * (self.size * self.size)
        scores = sums[torch.tensor([c[0] for c in candidates]), torch.tensor([c[1] for c in candidates])].tolist()
        kept: list[Window] = []
        for i in sorted(range(len(candidates)), key=lambda i: (-scores[i], i)):
            if len(kept) == self.k:
                break
            h, w, _ = candidates[i]
            if all(max(abs(h - a), abs(w - b)) >= self.distance for a, b, _ in kept):
                kept.append(candidates[i])
        return kept

    @property
    def canonical(self) -> str:
        return f"top:{self.k}:{self.size}:{self.stride}:{self.min_distance}"

    @property
    def words(self) -> str:
        apart = f"at least {self.min_distance} px apart" if self.min_distance else "overlap allowed"
        return f"the {self.k} strongest-edge windows of {self.size} px, {apart}"

    @property
    def text(self) -> str:
        if self.min_distance != self.size:
            return self.canonical
        return f"top:{self.k}:{self.size}" + (f":{self.stride}" if self.stride != max(1, self.size // 2) else "")


@dataclass(frozen=True)
class RandomWindows(WindowSpec):
    """``n`` distinct windows of ``size`` at random positions inside the image (seeded).

    Example:
        >>> from lamfast.lam.windows import RandomWindows
        >>> len(RandomWindows(n=5, size=16).resolve(torch.zeros(3, 64, 64)))
        5
    """

    n: int
    size: int
    seed: int = 0

    def __post_init__(self) -> None:
        _at_least("n", self.n, 1)
        _at_least("window_size", self.size, 2)

    @property
    def count(self) -> int:
        return self.n

    def resolve(self, sr: torch.Tensor) -> list[Window]:
        sH, sW = sr.shape[-2:]
        if self.size > min(sH, sW):
            return []
        rng = random.Random(self.seed)
        across = sW - self.size + 1
        picks = rng.sample(range((sH - self.size + 1) * across), min(self.n, (sH - self.size + 1) * across))
        return [(p // across, p % across, self.size) for p in picks]

    @property
    def canonical(self) -> str:
        return f"random:{self.n}:{self.size}:{self.seed}"

    @property
    def text(self) -> str:
        return f"random:{self.n}:{self.size}:{self.seed}"

    @property
    def words(self) -> str:
        return f"{self.n} random windows of {self.size} px (seed {self.seed})"


SPEC_FORMS = ("list:H,W;H,W[:SIZE], grid:SIZE[:STRIDE], top:K:SIZE[:STRIDE[:MIN_DISTANCE]] or "
              "random:N:SIZE[:SEED]")


def parse_windows(spec: "str | WindowSpec", min_distance: int | None = None) -> WindowSpec:
    """A window spec from its text (a :class:`WindowSpec` is returned as it is).

    Args:
        spec: one of the forms in the module docstring.
        min_distance: for ``top:K``, the least distance between kept windows (default their size;
            also the spec's fourth number).
    Raises:
        LamfastError (``param="windows"``, or the setting's own name): a malformed spec or a bad setting.

    Example:
        >>> from lamfast.lam.windows import parse_windows
        >>> parse_windows("top:8:16")
        TopEdges(k=8, size=16, stride=8, min_distance=16)
    """
    if isinstance(spec, WindowSpec):
        if min_distance is not None and not isinstance(spec, TopEdges):
            raise LamfastError(f"min_distance applies to top:K windows, not to {spec.text!r}", param="min_distance")
        return spec
    kind, _, rest = str(spec).partition(":")
    parts = rest.split(":") if rest else []
    try:
        numbers = [int(p) for p in parts] if kind != "list" else []
    except ValueError:
        numbers = None
    built: WindowSpec | None = None
    if kind == "list" and 1 <= len(parts) <= 2:
        try:
            size = int(parts[1]) if len(parts) > 1 else 16
            items = [tuple(int(v) for v in item.split(",")) for item in parts[0].split(";") if item]
        except ValueError:
            items = []
        if items and all(len(i) in (2, 3) for i in items):
            built = WindowList(tuple(explicit(items, size)))
    elif numbers is not None and kind == "grid" and 1 <= len(numbers) <= 2:
        built = Grid(*numbers)
    elif numbers is not None and kind == "top" and 2 <= len(numbers) <= 4:
        if len(numbers) == 4 and min_distance is not None and min_distance != numbers[3]:
            raise LamfastError(f"the spec {spec!r} and min_distance={min_distance} give two minimum distances",
                               param="min_distance")
        built = TopEdges(*numbers[:3], min_distance=numbers[3] if len(numbers) == 4 else min_distance)
    elif numbers is not None and kind == "random" and 2 <= len(numbers) <= 3:
        built = RandomWindows(*numbers)
    if built is None:
        raise LamfastError(f"bad window spec {spec!r}: use {SPEC_FORMS}", param="windows")
    if min_distance is not None and not isinstance(built, TopEdges):
        raise LamfastError(f"min_distance applies to top:K windows, not to {spec!r}", param="min_distance")
    return built


__all__ = ["Grid", "RandomWindows", "SPEC_FORMS", "TopEdges", "WindowList", "WindowSpec", "check_window", "explicit",
           "grid_positions", "parse_windows"]
