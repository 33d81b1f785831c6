"""LAM: Local Attribution Maps for super-resolution (Gu & Dong, CVPR 2021).

Same numbers as the official LAM_Demo code (``GaussianBlurPath``,
``Path_gradient``, ``attr_grad``, ``saliency_map_PG``, ``grad_abs_norm``,
``gini``), computed with frozen parameters, input-only gradients, the path
in chunks through :func:`lamfast.path.integrate_path`, and, where the model
is local, on a crop of the image around each window
(:mod:`lamfast.lam.crop`).

One engine serves one window and many, images and clips: :func:`lam` is
``lam_windows([window])[0]``. The model runs once on the whole input (the
SR output, the scale, the crop check), then the windows run in groups
whose path memory stays bounded:

- windows with a crop run their crops as one batch of independent paths
  (every crop has one size), each point on its own window;
- the other windows share one path over the whole input: each chunk is
  forwarded once and back-propagated once per window (K windows cost
  F + K·B, not K·(F + B)).

:func:`lam_stream` yields the results group by group; :func:`lam_windows`
collects them and :func:`lamfast.di_map` keeps only what a DI map needs.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, Union

import torch
from torch import nn
from lamfast.descriptor import ModelDescriptor
from lamfast.errors import LAMError, LAMNaNWarning
from lamfast.lam.crop import CropInfo, crop_paths, local_window, parse_crop, plan_crops
from lamfast.lam.objective import Window, segment_objectives_and_ties, window_objectives
from lamfast.lam.official_path import require_opencv
from lamfast.lam.params import LAMParams, int_at_least, resolve_params
from lamfast.lam.paths import baseline_of, half_fold_deriv, lam_path
from lamfast.lam.progress import PathProgress, Progress, as_progress
from lamfast.lam.result import LAMResult, make_result, nan_warning
from lamfast.lam.srmodel import SRForward, lam_input
from lamfast.lam.windows import WindowSpec, check_window, explicit, parse_windows
from lamfast.modelstate import attribution_state
from lamfast.path import integrate_path

Model = Union[nn.Module, ModelDescriptor]
Windows = Union[Sequence[Sequence[int]], Callable[[torch.Tensor], Sequence[Sequence[int]]], WindowSpec, str]

# The official loop feeds one path step per forward, on the whole image. On
# CPU a batched or cropped convolution rounds differently from it, and which
# outputs tie exactly (the NaN steps) changes with the rounding: measured,
# 9 NaN steps at batch 20 against the official 10 at batch 1.
OFFICIAL_RUN = "mode='official' runs the whole image, one path step per forward, as the official code does"

# The memory one group of windows may hold in paths and accumulators: a
# 32x32 grid of 40² crops at fold 50 would otherwise build 2 GB of paths at
# once, and 1,000 whole-image windows of a 256² image 800 MB of sums.
GROUP_BYTES = 256 << 20


@dataclass(frozen=True)
class RunOptions:
    """How a LAM call runs (never what it computes): the run keywords of :func:`lam` and :func:`lam_windows`.

    Example:
        >>> from lamfast.lam import RunOptions
        >>> RunOptions(batch_size=8, crop="off")
        RunOptions(batch_size=8, crop='off', progress=False, errors='raise')
    """

    batch_size: int | None = None
    crop: str | int = "auto"
    progress: Progress = False
    errors: str = "raise"

    def __post_init__(self) -> None:
        if self.batch_size is not None:
            int_at_least("batch_size", self.batch_size, 1)
        as_progress(self.progress)  # a bad value fails here, before any model work
        object.__setattr__(self, "crop", parse_crop(self.crop))
        if self.errors not in ("raise", "return"):
            raise LAMError(f"errors must be 'raise' or 'return', got {self.errors!r}", param="errors")


@dataclass
class RunHeader:
    """What :func:`lam_stream` yields first: the whole input's output and the windows it gives."""

    sr: torch.Tensor  # [C',sH,sW]
    scale: int
    windows: list[Window]
    frame: int | None  # a clip's attributed output frame


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def check_path_memory(need: int, device: torch.device, what: str) -> None:
    """LAMError, before the path is built, when ``need`` bytes of path (points, derivatives, fold/2
    weights) would not fit the device's free memory; ``what`` says what the path is of."""
    from lamfast.path import free_bytes

    free = free_bytes(device)
    if need > 0.8 * free:
        raise LAMError(f"the LAM path of {what} needs about {_size(need)} ({need:,} bytes: the path points, "
                       f"their derivatives and the fold/2 weights), more than the {_size(free)} free on "
                       f"{device.type}: attribute a crop of the image around the window (or tiles of it), use fewer "
                       "path points (fold), or let the crop path run (crop='auto' on a model whose reach is local)",
                       param="image")


def _groups(items: list[int], per_item: int) -> list[list[int]]:
    size = max(1, GROUP_BYTES // max(per_item, 1))
    return [items[i:i + size] for i in range(0, len(items), size)]


def _run_crops(fwd: SRForward, image: torch.Tensor, windows: Sequence[Window], crops: Sequence[CropInfo],
               scale: int, params: LAMParams, opts: RunOptions, on_chunk, whole_path):
    """The cropped windows as L independent paths of one crop size.

    Returns:
        (total [L,C,ch,cw], nan_steps [L], ties [L] or None, batch size, fold/2 total [L,C,ch,cw] or None),
        on the device.
    """
    boxes = [c.box for c in crops]
    path_c, deriv_c = crop_paths(image, boxes, params.fold, params.sigma, params.l, whole=whole_path)
    alt = half_fold_deriv(deriv_c) if params.halves else None
    local = [local_window(win, box, scale) for win, box in zip(windows, boxes)]
    ties = torch.zeros(len(boxes), dtype=torch.long, device=image.device) if params.tracks_ties else None

    def objective(points: torch.Tensor, chunk) -> torch.Tensor:
        value, tied = segment_objectives_and_ties(fwd(points), [(a, b, local[lead]) for lead, a, b in chunk.segments()],
                                                  params.mode, ties=ties is not None, objective=params.objective,
                                                  reduce=params.reduce)
        if tied is not None:
            ties.index_add_(0, chunk.lead_index, tied.long())
        return value

    res = integrate_path(objective, path_c, deriv_c, batch_size=opts.batch_size, on_chunk=on_chunk, alt_deriv=alt)
    return res.total[0], res.nan_steps[0], ties, res.batch_size, None if alt is None else res.alt_total[0]


def _run_whole(fwd: SRForward, image: torch.Tensor, windows: Sequence[Window], params: LAMParams,
               opts: RunOptions, on_chunk, path):
    """Windows on the whole input: one path, K objectives per forward.

    Returns:
        (total [K,C,H,W], nan_steps [K], batch size, fold/2 total [K,C,H,W] or None), on the device.
    """
    def objective(points: torch.Tensor, chunk) -> torch.Tensor:
        return window_objectives(fwd(points), windows, params.mode, params.objective, params.reduce)

    alt = half_fold_deriv(path[1][None]) if params.halves else None
    res = integrate_path(objective, path[0][None], path[1][None], batch_size=opts.batch_size, on_chunk=on_chunk,
                         alt_deriv=alt)
    return res.total[:, 0], res.nan_steps[:, 0], res.batch_size, None if alt is None else res.alt_total[:, 0]


def _check_windows(given: list, window_size: int, sr_shape, errors: str) -> tuple[list[Window], list]:
    """The windows as (h, w, size) and, per window, None or the LAMError that keeps it from running."""
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


def lam_stream(model: Model, image: torch.Tensor, windows: Windows, params: LAMParams, opts: RunOptions, *,
               window_size: int = 16, frame: int | None = None,
               device: Any = None) -> Iterator[Union[RunHeader, tuple[int, Union[LAMResult, LAMError]]]]:
    """The engine behind :func:`lam_windows` and :func:`lamfast.di_map`: yields a :class:`RunHeader`, then
    ``(window index, LAMResult or LAMError)`` group by group (not in window order).

    Arguments as :func:`lam_windows`; ``params`` and ``opts`` validated.
    """
    if params.baseline != "zero":  # before any model work
        require_opencv(f"baseline={params.baseline!r} (the official IG baseline)", param="baseline")
    if params.mode == "official":
        require_opencv()  # before any model work
        opts = RunOptions(opts.batch_size or 1, opts.crop, opts.progress, opts.errors)
    if isinstance(windows, str):
        windows = parse_windows(windows)
    if not callable(windows) and not isinstance(windows, WindowSpec):
        windows = list(windows)
        _check_windows(windows, window_size, None, opts.errors)  # malformed windows fail before any model work
    fwd, x = lam_input(model, image, frame, device)
    H, W = x.shape[-2:]
    t0 = time.perf_counter()
    progress = as_progress(opts.progress)
    if opts.crop == "off" or params.mode == "official" or params.path != "blur":
        # the path on the whole input is certain: refuse it before the first forward, not after
        check_path_memory((3 if params.halves else 2) * params.fold * x.numel() * x.element_size(), x.device,
                          f"the whole {H}x{W} input")
    with attribution_state(fwd.model), _closing(progress):
        progress.phase(f"forward of the model on the whole {H}x{W} input")
        with torch.no_grad():
            # A copy: some models scale their input in place (spandrel's RCAN
            # does x *= rgb_range), which would change the image the path is made of.
            fwd, full = fwd.first(x[None].clone())
        scale = full.shape[-1] // W
        sr = full[0]
        chosen = windows.resolve(sr) if isinstance(windows, WindowSpec) else windows(sr) if callable(windows) else windows
        wins, outcome = _check_windows(chosen, window_size, (H * scale, W * scale), opts.errors)
        yield RunHeader(sr.detach(), scale, wins, fwd.frame)
        for i, error in enumerate(outcome):
            if error is not None:
                yield i, error
        live = [i for i, o in enumerate(outcome) if o is None]
        if not live:
            return
        t1 = time.perf_counter()
        if params.mode == "official":
            crops = [CropInfo(None, None, OFFICIAL_RUN)] * len(live)
        else:
            progress.phase("measuring the model's reach, to run each window on a crop")
            crops = plan_crops(fwd, x, full, [wins[i] for i in live], scale, params.tracks_ties, opts.crop)
        t2 = time.perf_counter()
        shared = (t2 - t0) / len(live)  # the forward and the crop plan, shared by every window
        with torch.no_grad():  # F(x) per window, from the forward already made
            end_values = window_objectives(full, [wins[i] for i in live], params.mode, params.objective,
                                           params.reduce)[:, 0]
        runs = _runs(fwd, x, [wins[i] for i in live], crops, scale, params, opts, progress)
        for group, seconds in runs:
            for k, done in group.items():
                timings = {"forward": t1 - t0, "crop_plan": t2 - t1, "path_integral": seconds,
                           "total": shared + seconds / len(group)}
                try:
                    yield live[k], make_result(
                        done.attribution / params.fold, done.nan_steps, frames=fwd.frames, frame=fwd.frame,
                        half=None if done.half is None else done.half / params.fold,
                        change=end_values[k] - done.start_value, sr=sr, scale=scale, window=wins[live[k]],
                        params=params, batch_size=done.batch_size, crop=done.crop, timings=timings)
                except LAMError as exc:
                    yield live[k], exc


@dataclass
class WindowSum:
    """One window's path sums as the engine ends them, on the device."""

    attribution: torch.Tensor  # [C,H,W] Σ_j g_j ⊙ γ'_j over the whole input
    nan_steps: int
    batch_size: int
    crop: CropInfo  # which path ran
    half: torch.Tensor | None  # [C,H,W] the fold/2 sum (LAMParams.halves), else None
    start_value: torch.Tensor  # [] the objective at the path's start, F(γ_0)


class _closing:
    """Closes a PathProgress however the run ends (a generator closed early, an error)."""

    def __init__(self, progress: PathProgress) -> None:
        self.progress = progress

    def __enter__(self) -> PathProgress:
        return self.progress

    def __exit__(self, *exc) -> None:
        self.progress.close()


def _start_values_cropped(fwd: SRForward, start: torch.Tensor, windows: list[Window], boxes: list, scale: int,
                          params: LAMParams, batch: int) -> torch.Tensor:
    """F(γ_0) of each cropped window on its crop of the path's start [C,H,W]: [L], no grad, ``batch``
    crops per forward (exact where the path on the crop is: its crop was checked)."""
    crops = torch.stack([start[:, t:b, lft:r] for t, lft, b, r in boxes])
    local = [local_window(win, box, scale) for win, box in zip(windows, boxes)]
    out = []
    for a in range(0, len(boxes), batch):
        y = fwd(crops[a:a + batch].clone())
        segments = [(i - a, i - a + 1, local[i]) for i in range(a, min(a + batch, len(boxes)))]
        out.append(segment_objectives_and_ties(y, segments, params.mode, False, params.objective, params.reduce)[0])
    return torch.cat(out)


def _runs(fwd: SRForward, x: torch.Tensor, windows: list[Window], crops: list[CropInfo], scale: int,
          params: LAMParams, opts: RunOptions, progress: PathProgress) -> Iterator[tuple[dict[int, WindowSum], float]]:
    """Every window's path, group by group: yields ({window: WindowSum}, the group's seconds)."""
    C, H, W = x.shape
    S = params.fold
    itemsize = x.element_size()
    cropped = [k for k, c in enumerate(crops) if c.box is not None]
    whole = [k for k, c in enumerate(crops) if c.box is None]
    copies = 3 if params.halves else 2  # path, derivative and the fold/2 weights
    whole_path_bytes = copies * S * C * H * W * itemsize
    acc_bytes = 8 if x.dtype == torch.float64 else 4
    crop_groups = []
    if cropped:
        t, lft, b, r = crops[cropped[0]].box
        crop_groups = _groups(cropped, copies * S * C * (b - t) * (r - lft) * itemsize)
        check_path_memory(copies * S * C * (b - t) * (r - lft) * itemsize * len(crop_groups[0]), x.device,
                          f"{len(crop_groups[0])} crop(s) of {b - t}x{r - lft}")
    whole_groups = _groups(sorted(whole), (copies - 1) * C * H * W * acc_bytes)
    # Everything planned is on the bar (and in the estimate) before the first path point.
    progress.expect(S * len(cropped) + S * len(whole_groups), len(cropped) + len(whole))
    clock = {"start": None, "told": False}

    def on_chunk(points: int) -> None:
        if not clock["told"]:  # the first chunk's forward and backward, per point: the estimate
            clock["told"] = True
            progress.estimate((time.perf_counter() - clock["start"]) / points)
        progress.advance(points)

    # A straight-line path is cut from the whole image's: its baseline may be a filter of the whole image.
    path = None
    if params.path != "blur" or whole:
        check_path_memory(whole_path_bytes, x.device, f"the whole {H}x{W} input")
        path = lam_path(x, params)
    start = baseline_of(x, params)  # γ_0, for completeness: one more forward per group, no backward
    if cropped:
        for group in crop_groups:
            begin = time.perf_counter()
            clock["start"] = clock["start"] or begin
            total, nans, ties, batch, half = _run_crops(fwd, x, [windows[k] for k in group],
                                                        [crops[k] for k in group], scale, params, opts, on_chunk,
                                                        path if params.path != "blur" else None)
            tied = ties.tolist() if ties is not None else [0] * len(group)  # one read for the group
            counts = nans.tolist()
            kept = [j for j in range(len(group)) if not tied[j]]
            with torch.no_grad():
                starts = _start_values_cropped(fwd, start, [windows[group[j]] for j in kept],
                                               [crops[group[j]].box for j in kept], scale, params, batch) if kept else None
            done = {}
            for j, k in enumerate(group):
                if tied[j]:
                    # Exact ties inside a crop mean NaN steps in compat mode,
                    # and the official zeroing depends on the whole image.
                    crops[k] = CropInfo(None, crops[k].radius, "compat mode: the crop's output had exact ties "
                                        "(NaN steps), whose zeroing depends on the whole image")
                    whole.append(k)
                    continue
                t, lft, b, r = crops[k].box
                sums = []
                for part in (total, half) if half is not None else (total,):
                    placed = torch.zeros(C, H, W, dtype=part.dtype, device=part.device)
                    placed[:, t:b, lft:r] = part[j]
                    sums.append(placed)
                done[k] = WindowSum(sums[0], int(counts[j]), batch, crops[k], sums[1] if half is not None else None,
                                    starts[kept.index(j)])
            if done:
                yield done, time.perf_counter() - begin
    if whole:
        if path is None:
            check_path_memory(whole_path_bytes, x.device, f"the whole {H}x{W} input")
            path = lam_path(x, params)
        with torch.no_grad():
            starts = window_objectives(fwd(start[None].clone()), [windows[k] for k in sorted(whole)], params.mode,
                                       params.objective, params.reduce)[:, 0]
        start_of = dict(zip(sorted(whole), starts))
        groups = _groups(sorted(whole), (copies - 1) * C * H * W * acc_bytes)
        if len(groups) > len(whole_groups):  # crops that fell back to the whole input (ties)
            progress.expect(S * (len(groups) - len(whole_groups)), 0)
        for group in groups:
            begin = time.perf_counter()
            clock["start"] = clock["start"] or begin
            total, nans, batch, half = _run_whole(fwd, x, [windows[k] for k in group], params, opts, on_chunk, path)
            counts = nans.tolist()  # one read for the group
            yield ({k: WindowSum(total[j], int(counts[j]), batch, crops[k], None if half is None else half[j],
                                 start_of[k]) for j, k in enumerate(group)}, time.perf_counter() - begin)


def _collect(model: Model, image: torch.Tensor, windows: Windows, params: LAMParams, opts: RunOptions, *,
             window_size: int, frame: int | None, device: Any, stacklevel: int) -> list[LAMResult | LAMError]:
    stream = lam_stream(model, image, windows, params, opts, window_size=window_size, frame=frame, device=device)
    header = next(stream)
    out: list = [None] * len(header.windows)
    for i, outcome in stream:
        if isinstance(outcome, LAMError) and opts.errors == "raise":
            stream.close()
            raise outcome
        out[i] = outcome
    for r in out:
        if isinstance(r, LAMResult) and r.nan_steps and params.mode != "robust":
            warnings.warn(nan_warning(params, f"{r.nan_steps} of {params.fold} path steps had"), LAMNaNWarning,
                          stacklevel=stacklevel + 1)
    return out


def lam_windows(
    model: Model,
    image: torch.Tensor,
    windows: Windows,
    *,
    window_size: int = 16,
    frame: int | None = None,
    params: LAMParams | None = None,
    fold: int | None = None,
    sigma: float | None = None,
    l: int | None = None,
    mode: str | None = None,
    path: str | None = None,
    objective: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
    reduce: str | None = None,
    baseline: str | None = None,
    batch_size: int | None = None,
    crop: str | int = "auto",
    device: str | torch.device | None = None,
    progress: Progress = False,
    errors: str = "raise",
) -> list[LAMResult | LAMError]:
    """LAM for K windows of one image or clip; each result equals :func:`lam` for that window.

    Args:
        model, image, frame, params, fold, sigma, l, mode, path, objective, reduce, baseline,
            batch_size, crop, device, progress: as :func:`lam`.
        windows: ``[(h, w)]`` (side ``window_size``) or ``[(h, w, size)]``, SR pixels; a window spec
            (:class:`lamfast.lam.windows.WindowSpec`, or its text such as ``"grid:16"`` or
            ``"top:8:16"``); or a function of the SR output [C',sH,sW] returning the windows.
        window_size: the side of windows given as ``(h, w)``.
        errors: ``"raise"`` raises the first LAMError; ``"return"`` puts it in the list in place of
            that window's result (the others still run).
    Returns:
        One LAMResult (a clip's: VideoLAMResult), or LAMError, per window, in order. ``timings``
        holds the window's share of the run.

    Example:
        >>> import lamfast
        >>> from lamfast.request import prepare_input
        >>> model = lamfast.load_model()
        >>> x = prepare_input(model, "bundled").tensor()  # [3,64,64]
        >>> rs = lamfast.lam_windows(model, x, "top:2:16", fold=4)
        >>> [r.window for r in rs]
        [(224, 120, 16), (168, 184, 16)]
    """
    p = resolve_params(params, fold=fold, sigma=sigma, l=l, mode=mode, path=path, objective=objective, reduce=reduce,
                       baseline=baseline)
    opts = RunOptions(batch_size, crop, progress, errors)
    return _collect(model, image, windows, p, opts, window_size=window_size, frame=frame, device=device, stacklevel=2)


def lam(
    model: Model,
    image: torch.Tensor,
    h: int,
    w: int,
    window_size: int = 16,
    *,
    frame: int | None = None,
    params: LAMParams | None = None,
    fold: int | None = None,
    sigma: float | None = None,
    l: int | None = None,
    mode: str | None = None,
    path: str | None = None,
    objective: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
    reduce: str | None = None,
    baseline: str | None = None,
    batch_size: int | None = None,
    crop: str | int = "auto",
    device: str | torch.device | None = None,
    progress: Progress = False,
) -> LAMResult:
    """Local Attribution Map of one window of an SR model's output.

    What the result is comes from ``params`` (a :class:`LAMParams`) or its fields one by one
    (``fold``, ``sigma``, ``l``, ``mode``, ``path``, ``objective``, ``reduce``, ``baseline``; None
    leaves LAMParams' default: fold 50, sigma 1.2, l 9, compat, blur, grad, sum, zero); how it
    is computed from the run keywords (``batch_size``, ``crop``, ``device``, ``progress``), which
    never change the numbers.

    Args:
        model: an ``nn.Module`` or a :class:`lamfast.descriptor.ModelDescriptor` (from
            :func:`lamfast.load_model`, whose size requirements are honoured): [B,C,H,W] in [0,1]
            -> [B,C',sH,sW]; for a clip, [B,T,C,H,W] -> [B,T,C',sH,sW] or [B,C',sH,sW]. The scale
            s comes from one forward. It is never moved, cast or left changed: eval mode and frozen
            parameters hold for the call only, and it runs in its own float dtype (float32 or
            float64) and on its own device; the image is converted to them.
        image: the LR input, an image [C,H,W] or a clip [T,C,H,W], float in [0,1].
        h, w: top-left (row, column) of the window in SR pixels.
        window_size: window side in SR pixels, >= 2.
        frame: a clip's output frame to attribute, for models that return every frame (default
            the middle one, ``ceil(T/2) - 1``); None for an image.
        params: what defines the result, as one :class:`LAMParams`; or its fields one by one:
        fold, sigma, l: blur path (steps, start blur, odd kernel size).
        mode: ``"compat"`` reproduces the official numbers, NaN steps included (with a
            :class:`lamfast.LAMNaNWarning`); ``"official"`` is compat on the official code's
            OpenCV float32 path, for bit-identical NaN steps (needs OpenCV); ``"robust"`` gives
            sqrt a zero subgradient at 0, so no NaN arises.
        path: ``"blur"`` (LAM), ``"linear"`` (from ``baseline``: the official LinearPath, or IG
            with an IG baseline) or ``"gaussian_linear"`` (from the image blurred with ``sigma``,
            ``l``); see :class:`LAMParams` and :mod:`lamfast.lam.paths`.
        objective: ``"grad"`` (``attr_grad``), ``"id"`` (``attr_id``: the window's output values)
            or a function of the output window [N,C,d,d] -> [N].
        reduce: ``"sum"`` or ``"mean"`` over the window (built-in objectives).
        baseline: ``"zero"``, or an official IG baseline ``"gaus"``, ``"bif"``, ``"mean"``
            (OpenCV), for ``path="linear"``.
        batch_size: inputs (path points) per forward/backward pass; by default chosen from free
            memory (small on CPU, where larger chunks do not pay).
        crop: ``"auto"`` runs the model on a crop around the window where that is exact (radius
            measured on the model, checked on the image); ``"off"`` always runs the whole image;
            an int sets the radius in LR pixels (still checked). ``result.crop`` says which path
            ran and why.
        device: where to run: the model's device (the default); naming another is an error.
        progress: True: name the setup steps that last, print an estimate after the first path
            points ("about 18 min for 1 window (21.6 s per path point, 50 points)") and draw a
            tqdm bar over the path points (stderr); or a :class:`lamfast.lam.progress.PathProgress`
            that receives those events.
    Returns:
        LAMResult (VideoLAMResult for a clip).
    Raises:
        LAMError (a ValueError): bad arguments, a window outside the SR image, a model that is not
            an SR model for this input or returns NaN, or an all-zero attribution.

    Example:
        >>> import lamfast
        >>> from lamfast.request import prepare_input
        >>> model = lamfast.load_model()
        >>> r = lamfast.lam(model, prepare_input(model, "bundled").tensor(), h=150, w=110, fold=10)
        >>> round(r.di, 4), r.crop.box is not None
        (0.6553, True)
    """
    p = resolve_params(params, fold=fold, sigma=sigma, l=l, mode=mode, path=path, objective=objective, reduce=reduce,
                       baseline=baseline)
    opts = RunOptions(batch_size, crop, progress)
    (result,) = _collect(model, image, [(h, w, window_size)], p, opts, window_size=window_size, frame=frame,
                         device=device, stacklevel=2)
    return result


__all__ = ["RunHeader", "RunOptions", "lam", "lam_stream", "lam_windows"]
