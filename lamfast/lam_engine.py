"""LAM: Local Attribution Maps for super-resolution (Gu & Dong, CVPR 2021).

Same numbers as the official LAM_Demo code (``GaussianBlurPath``,
``Path_gradient``, ``attr_grad``, ``saliency_map_PG``, ``grad_abs_norm``,
``gini``), computed with frozen parameters, input-only gradients and the
path in chunks through :mod:`lamfast.path`.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from lamfast.metrics import gini as gini_index
from lamfast.modelstate import attribution_state, model_device
from lamfast.ops import blur_path, kde_map
from lamfast.path import ActivationMeter, add_path_gradients, chunk_size, integrate_path

MODES = ("compat", "robust")


class LAMError(ValueError):
    """LAM cannot give a meaningful answer for these inputs (one-line message)."""


class LAMNaNWarning(UserWarning):
    """Some path steps had NaN input gradients and were zeroed (compat mode)."""


@dataclass
class LAMResult:
    """One LAM computation.

    Attributes:
        attribution: [3,H,W] float32, signed; the official ``saliency_map_PG``.
        saliency: [H,W] float32, ``|Σ_c attribution| / max`` (``grad_abs_norm``).
        gini: Gini coefficient of ``saliency``.
        di: Diffusion Index, ``(1 - gini) * 100``.
        sr: [3,sH,sW] the model's output for the input image.
        scale: SR factor s found from the model's output.
        window: (h, w, window_size) in SR pixels.
        nan_steps: path steps whose gradient held NaN (zeroed, as officially).
        timings: seconds spent per phase.
    """

    attribution: torch.Tensor
    saliency: torch.Tensor
    gini: float
    di: float
    sr: torch.Tensor
    scale: int
    window: tuple[int, int, int]
    fold: int
    sigma: float
    l: int
    mode: str
    batch_size: int
    nan_steps: int
    timings: dict[str, float] = field(default_factory=dict)

    def kde(self) -> torch.Tensor:
        """The official KDE visual of ``saliency``: [H,W], max 1."""
        return kde_map(self.saliency)

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures and parameters (no tensors)."""
        h, w, size = self.window
        return {
            "di": self.di,
            "gini": self.gini,
            "scale": self.scale,
            "h": h,
            "w": w,
            "window_size": size,
            "fold": self.fold,
            "sigma": self.sigma,
            "l": self.l,
            "mode": self.mode,
            "batch_size": self.batch_size,
            "nan_steps": self.nan_steps,
            "lr_size": list(self.saliency.shape),
            "sr_size": list(self.sr.shape[-2:]),
            "timings_s": dict(self.timings),
        }


def _sqrt_zero_subgradient(x: torch.Tensor) -> torch.Tensor:
    """sqrt whose gradient at 0 is 0 instead of inf (no NaN from 0 * inf)."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, torch.ones_like(x)).pow(0.5), torch.zeros_like(x))


def window_objectives(y: torch.Tensor, windows: Sequence[tuple[int, int, int]], mode: str) -> torch.Tensor:
    """The official ``attr_grad`` objective of each output for each window: [K, N].

    ``G = sqrt(hg[:,:,:,:-1] + wg[:,:,:-1,:])`` with squared forward
    differences of ``y`` [N,3,SH,SW], cropped to ``[h:h+size, w:w+size]``,
    summed over channels. In ``compat`` the sqrt covers the whole output
    before the crop, exactly as officially, so zero differences anywhere give
    the official NaNs; in ``robust`` the crop comes first and sqrt has a zero
    subgradient at 0. The squared differences are shared by all windows.
    """
    hg = (y[:, :, :-1, :] - y[:, :, 1:, :]).pow(2)
    wg = (y[:, :, :, :-1] - y[:, :, :, 1:]).pow(2)
    sq = hg[:, :, :, :-1] + wg[:, :, :-1, :]
    if mode == "robust":
        crops = [_sqrt_zero_subgradient(sq[:, :, h : h + s, w : w + s]) for h, w, s in windows]
    else:
        g = sq.pow(0.5)
        crops = [g[:, :, h : h + s, w : w + s] for h, w, s in windows]
    return torch.stack([c.sum(dim=(1, 2, 3)) for c in crops])


def window_objective(y: torch.Tensor, h: int, w: int, size: int, mode: str) -> torch.Tensor:
    """:func:`window_objectives` for one window: [N,3,SH,SW] -> [N]."""
    return window_objectives(y, [(h, w, size)], mode)[0]


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise LAMError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _prepare_image(image: torch.Tensor, device: torch.device) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        raise LAMError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise LAMError(f"image must be an RGB tensor [3,H,W] or [1,3,H,W], got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise LAMError(f"image must be a float tensor in [0,1], got {image.dtype}")
    if not bool(torch.isfinite(image).all()):
        raise LAMError("image contains NaN or inf")
    return image.detach().to(device=device, dtype=torch.float32)


def _check_output(sr: Any, lr_shape: tuple[int, int]) -> int:
    """Validate the model's output for the LR image and return the scale."""
    H, W = lr_shape
    if not isinstance(sr, torch.Tensor) or sr.dim() != 4 or sr.shape[0] != 1:
        shape = tuple(sr.shape) if isinstance(sr, torch.Tensor) else type(sr).__name__
        raise LAMError(f"model must return a tensor [B,3,sH,sW] for input [1,3,{H},{W}], got {shape}")
    if sr.shape[1] != 3:
        raise LAMError(f"model output must have 3 channels, got {sr.shape[1]} (shape {tuple(sr.shape)})")
    sH, sW = sr.shape[-2:]
    if sH % H or sW % W or sH // H != sW // W or sH < H:
        raise LAMError(
            f"model output {sH}x{sW} is not an integer multiple of the input {H}x{W}: not an SR model for this input"
        )
    if not bool(torch.isfinite(sr).all()):
        raise LAMError("model returned NaN or inf for the input image")
    return sH // H


def check_path_args(fold: Any, sigma: Any, l: Any, mode: Any, batch_size: Any) -> None:
    """Raise LAMError for path parameters LAM refuses."""
    if mode not in MODES:
        raise LAMError(f"mode must be one of {MODES}, got {mode!r}")
    _check_int("fold", fold, 1)
    if isinstance(l, bool) or not isinstance(l, int) or l < 1 or l % 2 == 0:
        raise LAMError(f"l must be an odd integer >= 1, got {l!r}")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma < 0:
        raise LAMError(f"sigma must be a finite number >= 0, got {sigma!r}")
    if batch_size is not None:
        _check_int("batch_size", batch_size, 1)


def check_window(h: Any, w: Any, size: Any, sr_shape: tuple[int, int] | None = None) -> None:
    """Raise LAMError for a window that is malformed or outside the SR image."""
    _check_int("window_size", size, 2)
    _check_int("h", h, 0)
    _check_int("w", w, 0)
    if sr_shape is not None:
        sH, sW = sr_shape
        if h + size > sH or w + size > sW:
            raise LAMError(
                f"window (h={h}, w={w}, size={size}) lies outside the {sH}x{sW} SR image "
                f"(need h + size <= {sH} and w + size <= {sW})"
            )


@dataclass
class FirstStep:
    """The forward of the last path point (the image itself), kept for its backward."""

    inputs: torch.Tensor  # [1,3,H,W], requires grad
    output: torch.Tensor  # [1,3,sH,sW], attached to the graph
    scale: int
    activation_bytes: int


def first_step(model: nn.Module, path: torch.Tensor) -> FirstStep:
    """Forward the last path point with grad, measuring activations and checking the output.

    The last point equals the LR image, so this forward is also the probe
    (scale, NaN output, chunk size) and costs no extra pass.
    """
    last = path[-1:].detach().requires_grad_(True)
    with torch.enable_grad(), ActivationMeter(model) as meter:
        y = model(last.clone())
    scale = _check_output(y, tuple(path.shape[-2:]))
    return FirstStep(last, y, scale, meter.bytes)


def finish(
    total: torch.Tensor,
    nan_steps: int,
    *,
    sr: torch.Tensor,
    scale: int,
    window: tuple[int, int, int],
    fold: int,
    sigma: float,
    l: int,
    mode: str,
    batch_size: int,
    timings: dict[str, float],
) -> LAMResult:
    """Turn a path integral into a LAMResult: mean, checks, saliency, Gini, DI.

    Raises:
        LAMError: an all-zero or non-finite attribution.
    Warns:
        LAMNaNWarning: in compat mode, when steps had NaN gradients.
    """
    attribution = total / fold
    grad_sum = attribution.sum(0).abs()
    peak = grad_sum.max()
    if not bool(torch.isfinite(peak)):
        raise LAMError("attribution is not finite (inf input gradients): the model's gradient overflows")
    if peak <= 0:
        if nan_steps == fold:
            raise LAMError(
                f"attribution is all zero: all {fold} path steps had NaN gradients (sqrt(0) in the objective, "
                "typical of nearest-neighbour upsampling or clamped outputs); rerun with mode='robust'"
            )
        raise LAMError(
            "attribution is all zero: the window's output does not depend on the input "
            "(a flat window, or a model that ignores its input there); move the window"
        )
    if nan_steps and mode == "compat":
        warnings.warn(
            f"LAM: {nan_steps} of {fold} path steps had NaN input gradients (sqrt(0) in the "
            "gradient-magnitude objective, e.g. equal neighbouring output pixels); their NaN entries were "
            "zeroed as in the official code. Use mode='robust' to avoid the loss.",
            LAMNaNWarning,
            stacklevel=3,
        )
    saliency = grad_sum / peak
    g = float(gini_index(saliency))
    return LAMResult(
        attribution=attribution,
        saliency=saliency,
        gini=g,
        di=(1.0 - g) * 100.0,
        sr=sr,
        scale=scale,
        window=window,
        fold=fold,
        sigma=float(sigma),
        l=l,
        mode=mode,
        batch_size=batch_size,
        nan_steps=nan_steps,
        timings=timings,
    )


def infer_scale(model: nn.Module, device: str | torch.device | None = None) -> int:
    """The SR factor of ``model`` from one forward of a small random image (model state restored)."""
    dev = torch.device(device) if device is not None else model_device(model)
    probe = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0)).to(dev)
    with attribution_state(model), torch.no_grad():
        return _check_output(model(probe), (24, 24))


def prepare(model: nn.Module, image: torch.Tensor, device) -> torch.Tensor:
    """Move the model if asked and return the image as float32 [3,H,W] on its device."""
    if device is not None:
        model.to(device)
    return _prepare_image(image, model_device(model))


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
) -> LAMResult:
    """Local Attribution Map of one SR-output window.

    Args:
        model: maps [B,3,H,W] in [0,1] to [B,3,sH,sW]; the scale s comes
            from one forward. Put in eval mode with frozen parameters for the
            call; both are restored afterwards.
        image: the LR input, [3,H,W] or [1,3,H,W] float in [0,1].
        h, w: top-left (row, column) of the window in SR pixels.
        window_size: window side in SR pixels, >= 2.
        fold, sigma, l: blur path (steps, start blur, odd kernel size).
        batch_size: path steps per forward/backward; by default chosen from
            free memory (small on CPU, where larger chunks do not pay).
        mode: ``"compat"`` reproduces the official numbers, NaN steps
            included (with a :class:`LAMNaNWarning`); ``"robust"`` gives sqrt
            a zero subgradient at 0, so no NaN arises.
        device: where to run; the model is moved there. Default: the
            model's device.
        progress: show a tqdm bar over the path steps.
    Returns:
        LAMResult.
    Raises:
        LAMError (a ValueError): bad arguments, a window outside the SR
            image, a model that is not an SR model for this input or returns
            NaN, or an all-zero attribution.
    """
    t0 = time.perf_counter()
    check_path_args(fold, sigma, l, mode, batch_size)
    check_window(h, w, window_size)
    x = prepare(model, image, device)

    with attribution_state(model):
        path, deriv = blur_path(x, fold, float(sigma), l)
        t1 = time.perf_counter()
        first = first_step(model, path)
        y = first.output
        check_window(h, w, window_size, tuple(y.shape[-2:]))
        sr = y.detach()[0]
        with torch.enable_grad():
            (g_last,) = torch.autograd.grad(window_objective(y, h, w, window_size, mode).sum(), first.inputs)
        del y, first.output
        acc = torch.zeros_like(x, dtype=torch.float32)
        nan_steps = add_path_gradients(acc, g_last, deriv[fold - 1 : fold])
        chunk = batch_size or chunk_size(first.activation_bytes, first.inputs, sr, fold)
        t2 = time.perf_counter()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=fold, initial=1, desc="LAM path", unit="step", leave=False)
        try:
            result = integrate_path(
                lambda inputs: window_objective(model(inputs), h, w, window_size, mode),
                path[: fold - 1],
                deriv[: fold - 1],
                batch_size=chunk,
                acc=acc,
                on_chunk=bar.update if bar is not None else None,
            )
        finally:
            if bar is not None:
                bar.close()
        nan_steps += result.nan_steps
    t3 = time.perf_counter()
    out = finish(acc, nan_steps, sr=sr, scale=first.scale, window=(h, w, window_size), fold=fold, sigma=sigma,
                 l=l, mode=mode, batch_size=chunk, timings={})
    t4 = time.perf_counter()
    out.timings.update(blur_path=t1 - t0, first_step=t2 - t1, path_integral=t3 - t2, metrics=t4 - t3, total=t4 - t0)
    return out
