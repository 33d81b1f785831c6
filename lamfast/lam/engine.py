"""LAM: Local Attribution Maps for super-resolution (Gu & Dong, CVPR 2021).

Same numbers as the official LAM_Demo code (``GaussianBlurPath``,
``Path_gradient``, ``attr_grad``, ``saliency_map_PG``, ``grad_abs_norm``,
``gini``), computed with frozen parameters, input-only gradients, the path
in chunks through :func:`lamfast.path.integrate_path`, and, where the model
is local, on a crop of the image around each window
(:mod:`lamfast.lam.crop`).

One engine serves one window and many: :func:`lam` is
``lam_windows([window])[0]``. For an image, the model runs once on the
whole image (the SR output, the scale, the crop check), then:

- windows with a crop run their crops as one batch of independent paths
  (every crop has one size), each point on its own window;
- the other windows share one path over the whole image: each chunk is
  forwarded once and back-propagated once per window (K windows cost
  F + K·B, not K·(F + B)).
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Sequence, Union

import torch
from torch import nn
from tqdm.auto import tqdm

from lamfast.errors import first_line
from lamfast.lam.crop import CropInfo, crop_paths, local_window, parse_crop, plan_crops
from lamfast.lam.errors import LAMError
from lamfast.lam.objective import Window, segment_objectives_and_ties, window_objectives
from lamfast.lam.params import LAMParams
from lamfast.lam.result import LAMResult, make_result
from lamfast.lam.official_path import require_opencv
from lamfast.lam.paths import lam_path
from lamfast.lam.srmodel import check_output, input_channels, prepare_image
from lamfast.lam.windows import check_window, explicit
from lamfast.modelstate import attribution_state
from lamfast.path import integrate_path

Windows = Union[Sequence[Sequence[int]], Callable[[torch.Tensor], Sequence[Sequence[int]]]]


# The official loop feeds one path step per forward, on the whole image. On
# CPU a batched or cropped convolution rounds differently from it, and which
# outputs tie exactly (the NaN steps) changes with the rounding: measured,
# 9 NaN steps at batch 20 against the official 10 at batch 1.
OFFICIAL_RUN = "mode='official' runs the whole image, one path step per forward, as the official code does"


def _expect(bar: tqdm, n: int) -> None:
    """``n`` more path points on the bar (a disabled bar keeps count too)."""
    bar.total += n
    bar.refresh()


def _run_crops(model: nn.Module, image: torch.Tensor, windows: Sequence[Window], crops: Sequence[CropInfo],
               scale: int, params: LAMParams, on_chunk, track_ties: bool):
    """The cropped windows as L independent paths of one crop size.

    Returns:
        (total [L,3,ch,cw], nan_steps [L], ties [L] or None, batch size), on the device.
    """
    boxes = [c.box for c in crops]
    # A straight-line path is cut from the whole image's: its baseline may be a filter of the whole image.
    whole = lam_path(image, params) if params.path != "blur" else None
    path_c, deriv_c = crop_paths(image, boxes, params.fold, params.sigma, params.l, whole=whole)
    local = [local_window(win, box, scale) for win, box in zip(windows, boxes)]
    ties = torch.zeros(len(boxes), dtype=torch.long, device=image.device) if track_ties else None

    def objective(points: torch.Tensor, chunk) -> torch.Tensor:
        value, tied = segment_objectives_and_ties(model(points), [(a, b, local[lead]) for lead, a, b in chunk.segments()],
                                                  params.mode, ties=ties is not None, objective=params.objective,
                                                  reduce=params.reduce)
        if tied is not None:
            ties.index_add_(0, chunk.lead_index, tied.long())
        return value

    res = integrate_path(objective, path_c, deriv_c, batch_size=params.batch_size, on_chunk=on_chunk)
    return res.total[0], res.nan_steps[0], ties, res.batch_size


def _run_whole(model: nn.Module, image: torch.Tensor, windows: Sequence[Window], params: LAMParams,
               window_batch: int | None, on_chunk):
    """Windows on the whole image: one path, K objectives per forward.

    Returns:
        (total [K,3,H,W], nan_steps [K], batch size), on the device.
    """
    path, deriv = lam_path(image, params)

    def objective(points: torch.Tensor, chunk) -> torch.Tensor:
        return window_objectives(model(points), windows, params.mode, params.objective, params.reduce)

    res = integrate_path(objective, path[None], deriv[None], batch_size=params.batch_size, on_chunk=on_chunk,
                         grad_batch=window_batch)
    return res.total[:, 0], res.nan_steps[:, 0], res.batch_size


def _integrate(model: nn.Module, image: torch.Tensor, windows: Sequence[Window], crops: list[CropInfo], scale: int,
               params: LAMParams, window_batch: int | None, bar: tqdm) -> list[tuple]:
    """Run every window's path: cropped ones as one batch, the rest on one whole-image path.

    Returns:
        Per window: (attribution sum [3,H,W], NaN steps, batch size, CropInfo that ran).
    """
    H, W = image.shape[-2:]
    S = params.fold
    cropped = [k for k, c in enumerate(crops) if c.box is not None]
    whole = [k for k, c in enumerate(crops) if c.box is None]
    _expect(bar, S * len(cropped) + (S if whole else 0))
    runs: dict[int, tuple] = {}
    if cropped:
        total, nans, ties, batch = _run_crops(model, image, [windows[k] for k in cropped],
                                              [crops[k] for k in cropped], scale, params, bar.update,
                                              track_ties=params.tracks_ties)
        tied = ties.tolist() if ties is not None else [0] * len(cropped)  # one read for all crops
        if any(tied) and not whole:
            _expect(bar, S)
        for j, k in enumerate(cropped):
            if tied[j]:
                # Exact ties inside a crop mean NaN steps in compat mode,
                # and the official zeroing depends on the whole image.
                crops[k] = CropInfo(None, crops[k].radius, "compat mode: the crop's output had exact ties "
                                    "(NaN steps), whose zeroing depends on the whole image")
                whole.append(k)
                continue
            t, lft, b, r = crops[k].box
            attribution = torch.zeros(image.shape[0], H, W, dtype=total.dtype, device=total.device)
            attribution[:, t:b, lft:r] = total[j]
            runs[k] = (attribution, nans[j], batch, crops[k])
    if whole:
        whole.sort()
        total, nans, batch = _run_whole(model, image, [windows[k] for k in whole], params, window_batch,
                                        bar.update)
        for j, k in enumerate(whole):
            runs[k] = (total[j], nans[j], batch, crops[k])
    counts = torch.stack([runs[k][1] for k in range(len(crops))]).tolist() if crops else []  # one read
    return [(runs[k][0], int(counts[k]), runs[k][2], runs[k][3]) for k in range(len(crops))]


def _compute(model: nn.Module, image: torch.Tensor, windows: Windows, params: LAMParams, *, window_size: int = 16,
            window_batch: int | None = None, device: str | torch.device | None = None, progress: bool = False,
            errors: str = "raise", crop: str | int = "auto", stacklevel: int = 2) -> list[LAMResult | LAMError]:
    """The engine behind :func:`lam` and :func:`lam_windows` (see there), with validated ``params``.
    Private: everything outside calls :func:`lam_windows`.

    ``windows`` may also be a function of the SR output [3,sH,sW], for
    windows chosen from it (e.g. :func:`lamfast.lam.windows.top_edges`):
    the SR output is computed once for both.
    """
    if errors not in ("raise", "return"):
        raise LAMError(f"errors must be 'raise' or 'return', got {errors!r}", param="errors")
    crop = parse_crop(crop)
    if params.baseline != "zero":  # before any model work
        require_opencv(f"baseline={params.baseline!r} (the official IG baseline) is computed", param="baseline")
    if params.mode == "official":
        require_opencv()  # before any model work
        if params.batch_size is None:
            params = replace(params, batch_size=1)
    if window_batch is not None and (isinstance(window_batch, bool) or not isinstance(window_batch, int)
                                     or window_batch < 1):
        raise LAMError(f"window_batch must be an integer >= 1, got {window_batch!r}", param="window_batch")
    t0 = time.perf_counter()

    def windows_checked(given, sr_shape=None) -> tuple[list[Window], list]:
        try:
            wins = explicit(given, window_size)
        except (TypeError, ValueError) as exc:
            raise LAMError(str(exc), param="windows") from None
        outcome: list = [None] * len(wins)
        for i, (h, w, s) in enumerate(wins):
            try:
                check_window(h, w, s, sr_shape)
            except LAMError as exc:
                if errors == "raise":
                    raise
                outcome[i] = exc
        return wins, outcome

    if not callable(windows):
        windows = list(windows)
        if not windows:
            return []
        windows_checked(windows)  # malformed windows fail before any model work
    x = prepare_image(model, image, device)
    H, W = x.shape[-2:]
    with attribution_state(model):
        with torch.no_grad():
            # A copy: some models scale their input in place (spandrel's RCAN
            # does x *= rgb_range), which would change the image the path is made of.
            try:
                full = model(x[None].clone())
            except Exception as exc:  # noqa: BLE001 - any failure of the user's model, said in one line
                first = first_line(exc)
                takes = input_channels(model)
                hint = (f"; the image has {x.shape[0]} channels, the model's first convolution takes {takes}"
                        if takes is not None and takes != x.shape[0] else "")
                raise LAMError(f"the model failed on the {H}x{W} input image ({type(exc).__name__}: {first}){hint}",
                               param="model") from None
        scale = check_output(full, (H, W))
        sr = full[0]
        wins, outcome = windows_checked(windows(sr) if callable(windows) else windows, (H * scale, W * scale))
        live = [i for i, o in enumerate(outcome) if o is None]
        live_windows = [wins[i] for i in live]
        t1 = time.perf_counter()
        if params.mode == "official":
            crops = [CropInfo(None, None, OFFICIAL_RUN)] * len(live_windows)
        else:
            crops = plan_crops(model, x, full, live_windows, scale, params.tracks_ties, crop)
        t2 = time.perf_counter()

        with tqdm(total=0, desc=f"LAM path ({len(live)} windows)", unit="point", disable=not (progress and live),
                  leave=False) as bar:
            runs = _integrate(model, x, live_windows, crops, scale, params, window_batch, bar)
    t3 = time.perf_counter()
    for k, i in enumerate(live):
        attribution, nan_steps, batch, crop_info = runs[k]
        timings = {"forward": t1 - t0, "crop_plan": t2 - t1, "path_integral": t3 - t2,
                   "total": (t3 - t0) / len(live), "run_total": t3 - t0, "windows": float(len(live))}
        try:
            outcome[i] = make_result(attribution / params.fold, nan_steps, sr=sr, scale=scale, window=wins[i],
                                     params=params, batch_size=batch, crop=crop_info, timings=timings,
                                     stacklevel=stacklevel + 1)
        except LAMError as exc:
            if errors == "raise":
                raise
            outcome[i] = exc
    return outcome  # type: ignore[return-value]


def lam_windows(
    model: nn.Module,
    image: torch.Tensor,
    windows: Windows,
    *,
    window_size: int = 16,
    fold: int = 50,
    sigma: float = 1.2,
    l: int = 9,
    batch_size: int | None = None,
    window_batch: int | None = None,
    mode: str = "compat",
    device: str | torch.device | None = None,
    progress: bool = False,
    errors: str = "raise",
    crop: str | int = "auto",
    path: str = "blur",
    objective: str | Callable[[torch.Tensor], torch.Tensor] = "grad",
    reduce: str = "sum",
    baseline: str = "zero",
    params: LAMParams | None = None,
) -> list[LAMResult | LAMError]:
    """LAM for K windows of one image; each result equals :func:`lam` for that window.

    Args:
        model, image, fold, sigma, l, mode, device, crop, path, objective, reduce, baseline: as :func:`lam`.
        params: the path parameters as one validated :class:`LAMParams`
            (what front ends build once), instead of ``fold``, ``sigma``,
            ``l``, ``mode``, ``batch_size``, ``path``, ``objective``,
            ``reduce`` and ``baseline``; giving both is an error.
        windows: ``[(h, w)]`` (side ``window_size``) or ``[(h, w, size)]``,
            SR pixels; or a function of the SR output [3,sH,sW] returning them.
        batch_size: path points per forward (default: from free memory).
        window_batch: windows per batched backward on the whole-image path
            (default 1, one backward per window: batching measured slower on
            CPU and on an H100, see :func:`lamfast.path.integrate_path`).
        errors: ``"raise"`` raises the first LAMError; ``"return"`` puts it
            in the list in place of that window's result (the others still run).
        progress: tqdm bar over the path points.
    Returns:
        One LAMResult (or LAMError) per window, in order. ``timings`` holds
        the window's share of the run and the run's total.
    """
    given = LAMParams(fold, sigma, l, mode, batch_size, path, objective, reduce, baseline)
    if params is None:
        params = given
    elif not isinstance(params, LAMParams):
        raise LAMError(f"params must be a LAMParams, got {type(params).__name__}", param="params")
    elif given != LAMParams():
        raise LAMError("give the path parameters either as params or as fold, sigma, l, mode, batch_size, path, "
                       "objective, reduce and baseline, not both", param="params")
    return _compute(model, image, windows, params, window_size=window_size, window_batch=window_batch,
                    device=device, progress=progress, errors=errors, crop=crop)


def lam(
    model: nn.Module,
    image: torch.Tensor,
    h: int,
    w: int,
    window_size: int = 16,
    *,
    fold: int = 50,
    sigma: float = 1.2,
    l: int = 9,
    batch_size: int | None = None,
    mode: str = "compat",
    device: str | torch.device | None = None,
    progress: bool = False,
    crop: str | int = "auto",
    path: str = "blur",
    objective: str | Callable[[torch.Tensor], torch.Tensor] = "grad",
    reduce: str = "sum",
    baseline: str = "zero",
) -> LAMResult:
    """Local Attribution Map of one SR-output window.

    Args:
        model: maps [B,3,H,W] in [0,1] to [B,3,sH,sW]; the scale s comes
            from one forward. Put in eval mode with frozen parameters for the
            call; both are restored afterwards. It runs in its own float
            dtype; the image is converted to it.
        image: the LR input, [3,H,W] or [1,3,H,W] float in [0,1].
        h, w: top-left (row, column) of the window in SR pixels.
        window_size: window side in SR pixels, >= 2.
        fold, sigma, l: blur path (steps, start blur, odd kernel size).
        batch_size: path points per forward/backward; by default chosen from
            free memory (small on CPU, where larger chunks do not pay).
        mode: ``"compat"`` reproduces the official numbers, NaN steps
            included (with a :class:`LAMNaNWarning`); ``"official"`` is
            compat on the official code's OpenCV float32 path, for
            bit-identical NaN steps (needs OpenCV); ``"robust"`` gives sqrt
            a zero subgradient at 0, so no NaN arises.
        device: where to run; the model is moved there. Default: the
            model's device.
        progress: show a tqdm bar over the path points.
        crop: ``"auto"`` runs the model on a crop around the window where
            that is exact (radius measured on the model, checked on the
            image); ``"off"`` always runs the whole image; an int sets the
            radius in LR pixels (still checked). ``result.crop`` says which
            path ran and why.
        path: ``"blur"`` (LAM), ``"linear"`` (from ``baseline``: the
            official LinearPath, or IG with an IG baseline) or
            ``"gaussian_linear"`` (from the image blurred with ``sigma``,
            ``l``); see :class:`LAMParams` and :mod:`lamfast.lam.paths`.
        objective: ``"grad"`` (``attr_grad``), ``"id"`` (``attr_id``: the
            window's output values) or a function of the output window
            [N,C,d,d] -> [N].
        reduce: ``"sum"`` or ``"mean"`` over the window (built-in objectives).
        baseline: ``"zero"``, or an official IG baseline ``"gaus"``,
            ``"bif"``, ``"mean"`` (OpenCV), for ``path="linear"``.
    Returns:
        LAMResult.
    Raises:
        LAMError (a ValueError): bad arguments, a window outside the SR
            image, a model that is not an SR model for this input or returns
            NaN, or an all-zero attribution.
    """
    params = LAMParams(fold, sigma, l, mode, batch_size, path, objective, reduce, baseline)
    (result,) = _compute(model, image, [(h, w, window_size)], params, device=device, progress=progress, crop=crop)
    return result  # type: ignore[return-value]
