"""DI maps: the Diffusion Index of every window of a grid over the SR output (:func:`di_map`).

One LAM window answers for one place; a DI map answers where, across the
image, a network draws on wide context and where it stays local. Every
window runs through :func:`lamfast.lam_windows` (receptive-field crops,
shared forwards), in chunks that bound memory; with ``store=`` each chunk is
committed to a dataset store as it finishes, and a rerun computes only the
windows the store does not hold.

The grid: windows of ``window_size`` every ``stride`` SR pixels (default the
window size) from the top-left corner; where the last one would not reach
the border, one more is placed flush with it (the last row and column are
clamped inside), so every pixel of the SR image lies in some window.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from lamfast.dataset.store import ResultStore, UnitRecord, encode_map
from lamfast.errors import LamfastError, first_line
from lamfast.lam import LAMError, LAMNaNWarning, LAMParams, lam_windows
from lamfast.lam.crop import CropInfo

Window = tuple[int, int, int]


def grid_positions(extent: int, size: int, stride: int) -> list[int]:
    """Window starts along one axis: ``0, stride, 2·stride, ...`` and, where the last does not end at
    ``extent``, one more at ``extent - size``."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise LamfastError(f"window_size must be an integer >= 2, got {size!r}", param="window_size")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise LamfastError(f"stride must be an integer >= 1, got {stride!r}", param="stride")
    if size > extent:
        raise LamfastError(f"window_size {size} is larger than the SR image's side {extent}", param="window_size")
    starts = list(range(0, extent - size + 1, stride))
    if starts[-1] + size < extent:
        starts.append(extent - size)
    return starts


@dataclass
class DIMap:
    """The DI of every window of a grid over one SR image.

    Attributes:
        di: [gh, gw] float64, the DI of window (i, j) at ``(rows[i], cols[j])``; NaN where it failed.
        rows, cols: the windows' top rows and left columns in SR pixels.
        window_size, stride: the grid's window side and step, SR pixels.
        scale: the model's SR factor.
        sr: [C,sH,sW] the model's output for the whole image.
        saliency: [gh, gw, H, W] uint8, each window's LAM map as ``round(255 · M)`` at LR size; None
            when not kept (``keep_maps=False``).
        nan_steps: [gh, gw] int64, path steps with NaN gradients (-1 where the window failed).
        crops: per window (row-major), which path ran (None where it failed).
        failures: ``{(i, j): reason}`` for the windows that failed.
        params: the path parameters.
        timings: ``total`` seconds, ``per_window`` (of the windows computed), ``computed`` and
            ``resumed`` (windows read back from the store).
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
    def boxes(self) -> list[Window]:
        """Every window ``(h, w, size)``, row-major (the order of ``crops``)."""
        return [(h, w, self.window_size) for h in self.rows for w in self.cols]

    @property
    def gini(self) -> torch.Tensor:
        """[gh, gw] Gini coefficients, ``1 - di / 100``."""
        return 1.0 - self.di / 100.0

    def saliency_map(self, i: int, j: int) -> torch.Tensor:
        """Window (i, j)'s map [H,W] float in [0,1] (from the kept uint8 maps)."""
        if self.saliency is None:
            raise LamfastError("the maps were not kept (keep_maps=False)", param="keep_maps")
        return self.saliency[i, j].float() / 255.0


def tensor_sha(t: torch.Tensor) -> str:
    """Content hash of a tensor: its shape and float32 bytes (32 hex digits)."""
    a = t.detach().to("cpu", torch.float32).contiguous()
    return hashlib.sha256(str(tuple(a.shape)).encode() + a.numpy().tobytes()).hexdigest()[:32]


def module_sha(model: nn.Module) -> str:
    """Content hash of a model: its class and its state (names, shapes, dtypes, bytes)."""
    digest = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}".encode())
    for name, value in model.state_dict().items():
        v = value.detach().cpu().contiguous()
        digest.update(f"{name}{tuple(v.shape)}{v.dtype}".encode())
        digest.update(v.view(torch.uint8).numpy().tobytes() if v.numel() else b"")
    return digest.hexdigest()[:32]


def _params(given: LAMParams | None, **fields) -> LAMParams:
    built = LAMParams(**fields)
    if given is None:
        return built
    if not isinstance(given, LAMParams):
        raise LAMError(f"params must be a LAMParams, got {type(given).__name__}", param="params")
    if built != LAMParams():
        raise LAMError("give the path parameters either as params or one by one, not both", param="params")
    return given


def di_map(model: nn.Module, image: torch.Tensor, window_size: int = 16, stride: int | None = None, *,
           keep_maps: bool = True, store: Any = None, name: str | None = None, model_name: str | None = None,
           lr_input: bool = False, chunk: int = 64, progress: bool = False, crop: str | int = "auto",
           device: str | torch.device | None = None, window_batch: int | None = None, params: LAMParams | None = None,
           fold: int = 50, sigma: float = 1.2, l: int = 9, batch_size: int | None = None, mode: str = "compat",
           path: str = "blur", objective: str = "grad", reduce: str = "sum", baseline: str = "zero") -> DIMap:
    """The DI of every window of a grid over the SR output of ``image``.

    Args:
        model, image, crop, device, window_batch, params, fold, sigma, l, batch_size, mode, path,
            objective, reduce, baseline: as :func:`lamfast.lam_windows` (image [C,H,W]).
        window_size: window side in SR pixels.
        stride: grid step in SR pixels (default ``window_size``); the last row and column are
            clamped inside the image (see the module docstring).
        keep_maps: keep every window's map as uint8 at LR size (``DIMap.saliency``).
        store: a dataset store path (or open :class:`ResultStore`) to write the windows into as they
            finish, and to resume from: windows it holds are read back, not recomputed. Its rows
            are a ``grid:`` run, which ``lamfast report`` gives an explorer page.
        name: what the store calls the image (default ``tensor:<hash>``); the path of the image
            file the tensor was made from lets reports draw it.
        model_name: what the store calls the model (default its class and content hash).
        lr_input: recorded with the rows: whether ``name`` is the LR input itself (else the HR
            image the official preprocessing made ``image`` from).
        chunk: windows per :func:`lamfast.lam_windows` call (and per store commit).
        progress: a tqdm bar over the windows.
    Returns:
        DIMap.
    Raises:
        LamfastError: bad arguments, or a model that fails on the image (one line, ``param`` named).
    """
    from lamfast.lam.srmodel import check_output, model_dtype
    from lamfast.modelstate import attribution_state, model_device

    params = _params(params, fold=fold, sigma=sigma, l=l, mode=mode, batch_size=batch_size, path=path,
                     objective=objective, reduce=reduce, baseline=baseline)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise LamfastError(f"chunk must be an integer >= 1, got {chunk!r}", param="chunk")
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        raise LamfastError(f"image must be a tensor [C,H,W], got {getattr(image, 'shape', type(image).__name__)}",
                           param="image")
    stride = window_size if stride is None else stride
    start = time.perf_counter()
    dev = torch.device(device) if device is not None else model_device(model)
    x = image.detach().to(dev, model_dtype(model))
    with attribution_state(model), torch.no_grad():
        try:
            sr = model(x[None].clone())
        except Exception as exc:  # noqa: BLE001 - the user's model, said in one line
            raise LamfastError(f"the model failed on the {x.shape[1]}x{x.shape[2]} image "
                               f"({type(exc).__name__}: {first_line(exc)})", param="model") from None
    scale = check_output(sr, tuple(x.shape[-2:]))
    sr = sr[0]
    rows = grid_positions(sr.shape[-2], window_size, stride)
    cols = grid_positions(sr.shape[-1], window_size, stride)
    windows = [(h, w, window_size) for h in rows for w in cols]
    H, W = image.shape[-2:]

    db, own_db = (ResultStore(store), True) if store is not None and not isinstance(store, ResultStore) else (store, False)
    base = None
    done: dict[Window, dict] = {}
    if db is not None:
        image_sha, model_sha = tensor_sha(image), module_sha(model)
        record_params = {"windows": f"grid:{window_size}:{stride}:clamped", **params.defining(),
                         "lr_input": bool(lr_input), "rgb_range": None}
        params_hash = hashlib.sha256(json.dumps(record_params, sort_keys=True).encode()).hexdigest()[:16]
        name = name or f"tensor:{image_sha[:12]}"
        model_name = model_name or f"{type(model).__name__}:{model_sha[:12]}"
        base = f"grid|{name}|{image_sha}|{model_sha}|{params_hash}"
        for row in db.rows_of(base + "|", with_maps=keep_maps):
            if row["status"] == "ok":
                done[(row["h"], row["w"], row["size"])] = row

    gh, gw = len(rows), len(cols)
    di = torch.full((gh * gw,), float("nan"), dtype=torch.float64)
    nan_steps = torch.full((gh * gw,), -1, dtype=torch.long)
    maps = torch.zeros(gh * gw, H, W, dtype=torch.uint8) if keep_maps else None
    crops: list[CropInfo | None] = [None] * len(windows)
    failures: dict[tuple[int, int], str] = {}

    def keep(k: int, value: float, nans: int, saliency: torch.Tensor | None, crop_info: CropInfo) -> None:
        di[k], nan_steps[k], crops[k] = value, nans, crop_info
        if maps is not None and saliency is not None:
            maps[k] = saliency.mul(255).round().clamp(0, 255).to(torch.uint8).cpu()

    for k, win in enumerate(windows):
        row = done.get(win)
        if row is not None:
            saliency = None
            if keep_maps:
                grad = torch.from_numpy(row["attribution"]).sum(0).abs()
                saliency = grad / grad.max()
            crop_json = json.loads(row["timings"] or "{}").get("crop") or {}
            box = crop_json.get("box")
            keep(k, row["di"], row["nan_steps"], saliency,
                 CropInfo(tuple(box) if box else None, crop_json.get("radius"), crop_json.get("reason", "")))
    todo = [k for k, win in enumerate(windows) if win not in done]
    computed = 0
    try:
        with tqdm(total=len(windows), initial=len(windows) - len(todo), desc="DI map", unit="window",
                  disable=not progress) as bar:
            for c0 in range(0, len(todo), chunk):
                part = todo[c0:c0 + chunk]
                with warnings.catch_warnings():
                    # one warning for the whole map, below, not one per chunk
                    warnings.simplefilter("ignore", LAMNaNWarning)
                    results = lam_windows(model, image, [windows[k] for k in part], params=params,
                                          errors="return", crop=crop, device=device, window_batch=window_batch)
                record = UnitRecord(f"{base}|part{part[0]}", name or "", model_name or "",
                                    base.rsplit("|", 1)[1] if base else "", "ok") if base else None
                for k, r in zip(part, results):
                    h, w, s = windows[k]
                    if isinstance(r, LAMError):
                        failures[(k // gw, k % gw)] = first_line(r)
                        row = {"status": "failed", "error": first_line(r)}
                    else:
                        keep(k, r.di, r.nan_steps, r.saliency, r.crop)
                        computed += 1
                        row = {"status": "ok", "di": r.di, "gini": r.gini, "nan_steps": r.nan_steps,
                               "scale": r.scale, "seconds": r.timings["total"],
                               "timings": json.dumps({**r.timings, "crop": r.crop.summary()})}
                        if record is not None:
                            blob, shape = encode_map(r.attribution.detach().cpu().numpy())
                            row.update(attribution=blob, attribution_shape=shape)
                    if record is not None:
                        record.rows.append({"key": f"{base}|{h},{w},{s}", "unit_key": record.unit_key,
                                            "image": record.image, "model": record.model, "h": h, "w": w,
                                            "size": s, "params_hash": record.params_hash,
                                            "params": json.dumps(record_params, sort_keys=True), **row})
                if record is not None:
                    if any(r["status"] != "ok" for r in record.rows):
                        record.status = "failed"
                        record.error = next(r["error"] for r in record.rows if r["status"] != "ok")
                    record.seconds = sum(r.get("seconds") or 0.0 for r in record.rows)
                    db.write_unit(record, image_sha=image_sha, model_sha=model_sha)
                bar.update(len(part))
    finally:
        if own_db:
            db.close()
    total = time.perf_counter() - start
    nan_windows = int((nan_steps > 0).sum())
    if nan_windows and params.mode != "robust":
        warnings.warn(f"LAM ({params.mode} mode): {nan_windows} of {len(windows)} windows had path steps with NaN "
                      "input gradients, zeroed as in the official code (DIMap.nan_steps counts them per window; "
                      "mode='robust' has none)", LAMNaNWarning, stacklevel=2)
    return DIMap(di=di.reshape(gh, gw), rows=rows, cols=cols, window_size=window_size, stride=stride, scale=scale,
                 sr=sr.detach(), saliency=maps.reshape(gh, gw, H, W) if maps is not None else None,
                 nan_steps=nan_steps.reshape(gh, gw), crops=crops, failures=failures, params=params,
                 timings={"total": total, "per_window": total / max(computed, 1), "computed": float(computed),
                          "resumed": float(len(windows) - len(todo))})


__all__ = ["DIMap", "di_map", "grid_positions", "module_sha", "tensor_sha"]
