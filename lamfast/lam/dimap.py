"""DI maps: the Diffusion Index of every window of a grid over the SR output (:func:`di_map`).

One LAM window answers for one place; a DI map answers where, across the
image, a network draws on wide context and where it stays local. The map is
:func:`lamfast.lam_windows` over a :class:`lamfast.lam.windows.Grid` (one
forward of the image, receptive-field crops, shared forwards), read group by
group so that only each window's DI and uint8 map are kept.

``lamfast explore`` computes the same windows through the dataset runner,
which stores them and resumes (``lamfast run --windows grid:SIZE``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch

from lamfast.errors import LAMError, LAMNaNWarning, LamfastError, first_line
from lamfast.lam.crop import CropInfo
from lamfast.lam.engine import Model, RunOptions, lam_stream
from lamfast.lam.params import LAMParams, resolve_params
from lamfast.lam.result import nan_warning
from lamfast.lam.progress import Progress
from lamfast.lam.windows import Grid
from lamfast.metrics import gini_from_di


@dataclass
class DIMap:
    """The DI of every window of a grid over one SR image.

    Attributes:
        di: [gh, gw] float64, the DI of window (i, j) at ``(rows[i], cols[j])``; NaN where it failed.
        rows, cols: the windows' top rows and left columns in SR pixels.
        window_size, stride: the grid's window side and step, SR pixels.
        scale: the model's SR factor.
        sr: [C',sH,sW] the model's output for the whole input.
        saliency: [gh, gw, H, W] uint8 (a clip's [gh, gw, T, H, W]), each window's LAM map as
            ``round(255 · M)`` at LR size; None when not kept (``keep_maps=False``).
        nan_steps: [gh, gw] int64, path steps with NaN gradients (-1 where the window failed).
        crops: per window (row-major), which path ran (None where it failed).
        failures: ``{(i, j): reason}`` for the windows that failed.
        params: what defines the results.
        timings: ``total`` seconds and ``per_window``.

    Example:
        >>> import lamfast, torch
        >>> m = lamfast.di_map(lamfast.load_model(), torch.rand(3, 8, 8), 16, fold=2)  # 32x32 SR: a 2x2 grid
        >>> m.shape, m.boxes[1], m.saliency_map(0, 1).shape
        ((2, 2), (0, 16, 16), torch.Size([8, 8]))
    """

    di: torch.Tensor
    rows: list[int]
    cols: list[int]
    window_size: int
    stride: int
    scale: int
    sr: torch.Tensor
    saliency: torch.Tensor | None
    nan_steps: torch.Tensor
    crops: list[CropInfo | None]
    failures: dict[tuple[int, int], str]
    params: LAMParams
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.cols)

    @property
    def boxes(self) -> list[tuple[int, int, int]]:
        """Every window ``(h, w, size)``, row-major (the order of ``crops``)."""
        return [(h, w, self.window_size) for h in self.rows for w in self.cols]

    @property
    def gini(self) -> torch.Tensor:
        """[gh, gw] Gini coefficients."""
        return gini_from_di(self.di)

    def saliency_map(self, i: int, j: int) -> torch.Tensor:
        """Window (i, j)'s map [H,W] (a clip's [T,H,W]) float in [0,1] (from the kept uint8 maps)."""
        if self.saliency is None:
            raise LamfastError("the maps were not kept (keep_maps=False)", param="keep_maps")
        return self.saliency[i, j].float() / 255.0


def di_map(model: Model, image: torch.Tensor, window_size: int = 16, stride: int | None = None, *,
           keep_maps: bool = True, frame: int | None = None, params: LAMParams | None = None, fold: int | None = None,
           sigma: float | None = None, l: int | None = None, mode: str | None = None, path: str | None = None,
           objective: str | Callable[[torch.Tensor], torch.Tensor] | None = None, reduce: str | None = None,
           baseline: str | None = None, batch_size: int | None = None, crop: str | int = "auto",
           device: str | torch.device | None = None, progress: Progress = False) -> DIMap:
    """The DI of every window of a grid over the SR output of ``image``.

    Args:
        model, image, frame, params, fold, sigma, l, mode, path, objective, reduce, baseline,
            batch_size, crop, device, progress: as :func:`lamfast.lam` (image [C,H,W] or clip [T,C,H,W]).
        window_size: window side in SR pixels.
        stride: grid step in SR pixels (default ``window_size``); the last row and column are
            flush with the border (:class:`lamfast.lam.windows.Grid`).
        keep_maps: keep every window's map as uint8 at LR size (``DIMap.saliency``).
    Returns:
        DIMap. Windows that fail are recorded in ``failures`` (the others are kept); path steps
        with NaN gradients give one :class:`lamfast.LAMNaNWarning` for the whole map.
    Raises:
        LamfastError: bad arguments, a window larger than the SR image, or a model that fails on
            the image (one line, ``param`` named).

    Example:
        >>> import lamfast
        >>> from lamfast.request import prepare_input
        >>> model = lamfast.load_model()
        >>> x = prepare_input(model, "bundled").tensor()[:, :16, :16]  # a 16x16 corner: 64x64 SR
        >>> m = lamfast.di_map(model, x, 32, fold=2)
        >>> m.shape, m.rows, m.saliency.shape
        ((2, 2), [0, 32], torch.Size([2, 2, 16, 16]))
    """
    import time

    grid = Grid(window_size, stride)
    p = resolve_params(params, fold=fold, sigma=sigma, l=l, mode=mode, path=path, objective=objective, reduce=reduce,
                       baseline=baseline)
    opts = RunOptions(batch_size, crop, progress, errors="return")
    start = time.perf_counter()
    stream = lam_stream(model, image, grid, p, opts, frame=frame, device=device)
    header = next(stream)
    rows, cols = grid.positions(tuple(header.sr.shape[-2:]))
    if not rows or not cols:
        stream.close()
        raise LamfastError(f"window_size {window_size} is larger than the {header.sr.shape[-2]}x"
                           f"{header.sr.shape[-1]} SR image", param="window_size")
    n = len(rows) * len(cols)
    di = torch.full((n,), float("nan"), dtype=torch.float64)
    nan_steps = torch.full((n,), -1, dtype=torch.long)
    maps: torch.Tensor | None = None
    crops: list[CropInfo | None] = [None] * n
    failures: dict[tuple[int, int], str] = {}
    for k, r in stream:
        if isinstance(r, LAMError):
            failures[divmod(k, len(cols))] = first_line(r)
            continue
        di[k], nan_steps[k], crops[k] = r.di, r.nan_steps, r.crop
        if keep_maps:
            if maps is None:
                maps = torch.zeros(n, *r.saliency.shape, dtype=torch.uint8)
            maps[k] = r.saliency.mul(255).round().clamp(0, 255).to(torch.uint8).cpu()
    if keep_maps and maps is None:  # every window failed
        maps = torch.zeros(n, *image.shape[-2:], dtype=torch.uint8)
    total = time.perf_counter() - start
    nan_windows = int((nan_steps > 0).sum())
    if nan_windows and p.mode != "robust":
        warnings.warn(nan_warning(p, f"{nan_windows} of {n} windows had path steps with"), LAMNaNWarning, stacklevel=2)
    done = n - len(failures)
    return DIMap(di=di.reshape(len(rows), len(cols)), rows=rows, cols=cols, window_size=window_size, stride=grid.step,
                 scale=header.scale, sr=header.sr, saliency=maps.reshape(len(rows), len(cols), *maps.shape[1:])
                 if maps is not None else None, nan_steps=nan_steps.reshape(len(rows), len(cols)), crops=crops,
                 failures=failures, params=p, timings={"total": total, "per_window": total / max(done, 1)})


__all__ = ["DIMap", "di_map"]
