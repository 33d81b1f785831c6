"""How far a change of one input pixel reaches in a model's output, measured.

The radius decides how much context a LAM crop keeps. It is measured on the
model itself, never guessed from kernel sizes: the centre pixel of two
random images (of different statistics) is changed, both pairs go through the model in one batch,
and the output pixels that moved at all (exactly, not above a threshold:
outside its reach a local model computes bit-identical values) give the
reach in LR pixels. A model whose change reaches the border of the probe
image (channel attention with global pooling, non-local blocks, full-image
attention, a receptive field wider than the image) gets no radius, so no
crop. The probe image starts small and doubles up to the input size while
the change still reaches its border, so big images probe cheaply.

A global operator behind a data-dependent gate that is shut for both probe
images (and for the image, which the crop check covers) is not seen; the
model is then local for those inputs.

Results are cached per (model, how it is called, input size, device, dtype) and forgotten
when the model's parameters change in place (``load_state_dict``) or the
model is garbage-collected; buffers a model updates in its own forward
(attention masks, index tables) do not count as a change. That a model is
global on a probe canvas is also kept per architecture (the class and its
parameter shapes) for the process: no other instance, and no input that
fits in that canvas, probes again. "Global" only ever means "no crop",
the whole-image path, which is exact for any weights.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import nn

from lamfast.modelstate import exact_float32

# LR pixels added to the measured reach. A random probe can leave the last
# pixel of the reach unseen where every path to it is blocked (a ReLU
# that is off for that image); the margin also covers sub-pixel reach of
# layers after the upsampler.
MARGIN = 2
# 80 px holds the reach of an EDSR-baseline (36 px) in one probe; smaller
# models probe on it cheaply, deeper ones double it until the reach fits.
FIRST_CANVAS = 80

_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()
# (architecture, device, dtype) -> (h, w) canvases on which such a model reached the border.
_GLOBAL_AT: dict[tuple, list[tuple[int, int]]] = {}


def architecture_key(model: nn.Module) -> tuple:
    """The class of a model and the names and shapes of its parameters."""
    return (type(model).__module__, type(model).__qualname__,
            tuple((name, tuple(p.shape)) for name, p in model.named_parameters()))


def _module_and_view(model) -> tuple[nn.Module, tuple]:
    # The engine's SRForward (a clip through a video model, a padded input) is
    # cached under the user's module with its view, so nothing holds the module.
    module = getattr(model, "model", model)
    return module, tuple(getattr(model, "view", ()))


@dataclass(frozen=True)
class Reach:
    """What the probe found.

    Attributes:
        radius: LR pixels of context a crop needs (measured + margin), or
            None: no crop for this model and size.
        measured: the largest distance, in LR pixels, at which an output
            moved (None when the probe could not tell).
        reason: one line: how it was measured, or why there is no radius.

    Example:
        >>> import lamfast
        >>> reach = lamfast.lam.influence_radius(lamfast.load_model().model, (64, 64), "cpu")
        >>> reach.radius == reach.measured + 2  # the margin
        True
    """

    radius: int | None
    measured: int | None
    reason: str


def _param_versions(model: nn.Module) -> tuple:
    # In-place updates (load_state_dict, optimiser steps) bump _version, so
    # a reach measured on other weights is not reused. Buffers are left out:
    # some models rewrite theirs in every forward (HAT's attention masks).
    return tuple((id(t), t._version) for t in model.parameters())


def _probe(model, canvas: tuple[int, int], device: torch.device,
           dtype: torch.dtype, channels: int = 3) -> tuple[int | None, bool, str]:
    """(measured reach, reaches the canvas border, note) on one canvas size."""
    ph, pw = canvas
    g = torch.Generator().manual_seed(0)
    # Two images of different statistics (uniform; dark and skewed), so a
    # gate that one of them leaves shut may open for the other.
    base = torch.rand(2, channels, ph, pw, generator=g)
    base[1] = base[1] ** 3
    moved = base.clone()
    a, b = ph // 2, pw // 2
    moved[:, :, a, b] = (moved[:, :, a, b] + 0.5) % 1.0  # a change of 0.5 in every channel
    batch = torch.cat([base, moved]).to(device=device, dtype=dtype)
    try:
        with torch.no_grad(), exact_float32():  # "moved at all" needs exact arithmetic, not TF32
            y = model(batch)
    except Exception as exc:  # noqa: BLE001 - any failure only means "do not crop"
        return None, True, f"the model failed on a {ph}x{pw} probe image ({type(exc).__name__})"
    if not isinstance(y, torch.Tensor) or y.dim() != 4 or y.shape[0] != 4:
        return None, True, "the model's output on a probe batch is not [4,C,sH,sW]"
    sH, sW = y.shape[-2:]
    if sH % ph or sW % pw or sH // ph != sW // pw:
        return None, True, f"the model's output {sH}x{sW} is not a multiple of the {ph}x{pw} probe image"
    if not bool(torch.isfinite(y).all()):
        return None, True, "the model returned NaN or inf on a probe image"
    s = sH // ph
    measured, border = 0, False
    for i in range(2):
        changed = ((y[2 + i] - y[i]).abs().amax(dim=0) > 0).nonzero()
        if changed.numel() == 0:
            continue
        rows, cols = changed[:, 0] // s, changed[:, 1] // s
        measured = max(measured, int((rows - a).abs().max()), int((cols - b).abs().max()))
        border = border or bool(rows.min() == 0 or rows.max() == ph - 1 or cols.min() == 0 or cols.max() == pw - 1)
    return measured, border, f"measured on {ph}x{pw} random images"


def influence_radius(model, lr_shape: tuple[int, int], device: torch.device | str,
                     dtype: torch.dtype = torch.float32, channels: int = 3) -> Reach:
    """The context radius a crop needs for ``model`` on LR inputs of ``lr_shape``.

    The model must already be in the state it is attributed in (eval mode);
    the probe runs without gradients. Cached (see the module docstring).

    Args:
        model: an nn.Module, or the engine's :class:`lamfast.lam.srmodel.SRForward`: maps
            [B,C,H,W] to [B,C',sH,sW].
        lr_shape: (H, W) of the images the crops come from.
        device, dtype: where and in what the model runs.
        channels: the input channels the model takes (the image's).
    Returns:
        Reach.

    Example:
        >>> import torch, lamfast
        >>> conv = torch.nn.Conv2d(3, 12, 3, padding=1)  # x2 after pixel shuffle: reach 1 LR pixel
        >>> model = torch.nn.Sequential(conv, torch.nn.PixelShuffle(2)).eval()
        >>> lamfast.lam.influence_radius(model, (32, 32), "cpu").measured
        1
    """
    device = torch.device(device)
    H, W = lr_shape
    module, view = _module_and_view(model)
    key = (view, H, W, str(device), dtype, channels)
    versions = _param_versions(module)
    per_model = _CACHE.setdefault(module, {})
    hit = per_model.get(key)
    if hit is not None and hit[0] == versions:
        return hit[1]
    arch = (architecture_key(module), view, str(device), dtype, channels)
    known = _GLOBAL_AT.get(arch, [])
    if any(H <= h and W <= w for h, w in known):
        reach = Reach(None, None, "a change of one input pixel reaches the image border (found for this "
                                  "architecture on a larger probe image earlier in this process)")
        per_model[key] = (versions, reach)
        return reach
    size = FIRST_CANVAS
    # Smaller canvases are known to be reached across: start above them.
    while any(min(H, size) <= h and min(W, size) <= w for h, w in known) and (min(H, size), min(W, size)) != (H, W):
        size *= 2
    while True:
        canvas = (min(H, size), min(W, size))
        measured, border, note = _probe(model, canvas, device, dtype, channels)
        if measured is not None and border:
            _GLOBAL_AT.setdefault(arch, []).append(canvas)
        if measured is not None and not border:
            reach = Reach(measured + MARGIN, measured, f"{note}: reach {measured} LR px + margin {MARGIN}")
            break
        if measured is not None and canvas != (H, W):
            size *= 2
            continue
        reason = note if measured is None else (
            "a change of one input pixel reaches the image border (global operators such as channel "
            "attention or non-local blocks, or a receptive field as wide as the image)")
        reach = Reach(None, measured, reason)
        break
    per_model[key] = (versions, reach)
    return reach
