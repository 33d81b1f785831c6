"""Receptive-field crops: LAM for a window at the cost of the window.

A window's objective depends only on the LR pixels within the model's
reach of the window. LAM on a crop of the LR image that holds the window's
footprint grown by that radius (clipped to the image) gives the same
gradients as LAM on the whole image; the gradient is zero everywhere else.
This module finds the crop boxes and checks them on the image itself before
they are trusted; :mod:`lamfast.lam.engine` runs them.

A box is ``(top, left, bottom, right)`` in LR pixels, bottom/right exclusive.

Compat mode and exact ties: a zero gradient magnitude anywhere in the SR
output gives NaN input gradients (the official NaN steps), and which entries
they zero depends on the whole image. So ties in the image's own output
mean no crop, and a tie seen inside a crop at any path step sends that
window back to the whole image. A tie that appears only at a blurred step,
outside the crop but within twice the radius of the window, is not seen.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch


from lamfast.descriptor import SizeRequirements
from lamfast.errors import LAMError
from lamfast.lam.objective import Window, exact_ties
from lamfast.lam.reach import influence_radius
from lamfast.modelstate import exact_float32, tf32_active

Box = tuple[int, int, int, int]

# Largest |crop output - full output| inside the window, relative to
# max(1, |full output|), that still counts as equal. Convolutions of
# different image sizes may take different kernels and round differently
# (measured: 0 on CPU for the bundled models); a crop that misses real
# context or shifts a stride grid is off by orders of magnitude more.
CHECK_TOLERANCE = {torch.float64: 1e-10, torch.float32: 2e-5, torch.bfloat16: 2e-2, torch.float16: 2e-3}
CHECK_BATCH = 8


@dataclass(frozen=True)
class CropInfo:
    """Which path a LAM result ran, recorded in :class:`~lamfast.lam.result.LAMResult`.

    Attributes:
        box: ``(top, left, bottom, right)`` of the LR crop the model ran on,
            or None: the whole image ran.
        radius: context radius in LR pixels (None when not known).
        reason: one line: how the radius was found, or why the whole image ran.

    Example:
        >>> from lamfast.lam import CropInfo
        >>> CropInfo((0, 0, 24, 24), 6, "measured").summary()
        {'box': [0, 0, 24, 24], 'radius': 6, 'reason': 'measured'}
    """

    box: Box | None
    radius: int | None
    reason: str

    def summary(self) -> dict[str, Any]:
        return {"box": list(self.box) if self.box else None, "radius": self.radius, "reason": self.reason}


def parse_crop(crop: Any) -> str | int:
    """``"auto"``, ``"off"`` or a radius >= 0 (LR pixels); LAMError otherwise."""
    if crop in ("auto", "off"):
        return crop
    if isinstance(crop, int) and not isinstance(crop, bool) and crop >= 0:
        return crop
    raise LAMError(f"crop must be 'auto', 'off' or an integer radius >= 0, got {crop!r}", param="crop")


def objective_rows(start: int, size: int, extent: int) -> tuple[int, int]:
    """SR rows (or columns) ``[a, b)`` a window's objective reads.

    G row i uses output rows i and i + 1, and G stops one short of the
    output, so a window [start, start+size) reads rows start..start+size,
    clipped to the output.
    """
    return start, min(start + size + 1, extent)


def footprint(window: Window, scale: int, lr_shape: tuple[int, int]) -> Box:
    """LR pixels whose outputs the window's objective reads."""
    h, w, s = window
    H, W = lr_shape
    r0, r1 = objective_rows(h, s, H * scale)
    c0, c1 = objective_rows(w, s, W * scale)
    return r0 // scale, c0 // scale, (r1 - 1) // scale + 1, (c1 - 1) // scale + 1


def _place(start: int, stop: int, radius: int, size: int, extent: int) -> int:
    # The crop keeps [start - radius, stop + radius) ∩ [0, extent). Where it
    # runs past the image it is moved inward instead of cut, so every crop
    # has one size (they batch); it then ends at the image border, where the
    # model pads exactly as it does for the whole image.
    return min(max(start - radius, 0), extent - size)


def _aligned_side(need: int, extent: int, size: SizeRequirements) -> int:
    # A side the model accepts as it is (a multiple, at least the minimum), with
    # room to move the box down onto the multiple's grid; the whole side when
    # that does not fit.
    m = size.multiple_of
    side = max(need + (m - 1 if m > 1 else 0), size.minimum)
    side = -(-side // m) * m
    return extent if side >= extent else side


def crop_boxes(windows: Sequence[Window], scale: int, lr_shape: tuple[int, int], radius: int,
               size: SizeRequirements = SizeRequirements()) -> list[Box]:
    """One box per window, all of one size: the largest footprint grown by ``radius``.

    For a model with size requirements the sides are multiples of
    ``size.multiple_of`` (at least ``size.minimum``) and the boxes start on
    that multiple's grid, as the whole image's pixels do, so a strided or
    downsampling model sees each crop as it sees the image.
    """
    H, W = lr_shape
    feet = [footprint(win, scale, lr_shape) for win in windows]
    ch = _aligned_side(max(b - t for t, _, b, _ in feet) + 2 * radius, H, size)
    cw = _aligned_side(max(r - lft for _, lft, _, r in feet) + 2 * radius, W, size)
    boxes = []
    for t, lft, b, r in feet:
        top = _aligned_start(_place(t, b, radius, ch, H), min(b + radius, H), ch, size.multiple_of)
        left = _aligned_start(_place(lft, r, radius, cw, W), min(r + radius, W), cw, size.multiple_of)
        boxes.append((top, left, top + ch, left + cw))
    return boxes


def _aligned_start(start: int, needed_end: int, side: int, m: int) -> int:
    # Down onto the multiple's grid where the box still holds what it must; at the
    # image border it may not (the box was moved inward there), and stays put: the
    # crop check then decides.
    aligned = start - start % m
    return aligned if aligned + side >= needed_end else start


def crop_paths(image: torch.Tensor, boxes: Sequence[Box], fold: int, sigma: float, l: int,
               whole: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The blur path and its derivative on each box: [L, fold, C, ch, cw] each.

    Equal to ``blur_path(image)`` cut to the boxes, bit for bit: a blurred
    pixel reads only the ``l // 2`` pixels around it, so each box is blurred
    with that halo (moved inward at the image border like the box, where
    the reflection then is the image's own) and the halo is cut away. Where
    the halos would cover more than the image, or ``whole`` (the path on the
    whole image) is at hand, the whole-image path is cut instead.
    """
    from lamfast.ops import blur_path

    H, W = image.shape[-2:]
    t0, l0, b0, r0 = boxes[0]
    ch, cw = b0 - t0, r0 - l0
    pad = l // 2
    hh, hw = min(H, ch + 2 * pad), min(W, cw + 2 * pad)
    if whole is None and len(boxes) * hh * hw < H * W:
        halos = [(_place(t, b, pad, hh, H), _place(lft, r, pad, hw, W)) for t, lft, b, r in boxes]
        path, deriv = blur_path(torch.stack([image[:, y:y + hh, x:x + hw] for y, x in halos]), fold, sigma, l)
        cuts = [(t - y, lft - x) for (t, lft, _, _), (y, x) in zip(boxes, halos)]
        lead = range(len(boxes))
    else:
        path, deriv = whole if whole is not None else blur_path(image, fold, sigma, l)
        path, deriv = path[None], deriv[None]
        cuts = [(t, lft) for t, lft, _, _ in boxes]
        lead = [0] * len(boxes)
    return (torch.stack([path[i, :, :, y:y + ch, x:x + cw] for i, (y, x) in zip(lead, cuts)]),
            torch.stack([deriv[i, :, :, y:y + ch, x:x + cw] for i, (y, x) in zip(lead, cuts)]))


def local_window(window: Window, box: Box, scale: int) -> Window:
    """The window in the SR coordinates of its crop's output."""
    h, w, s = window
    return h - box[0] * scale, w - box[1] * scale, s


def crop_mismatch(model, image: torch.Tensor, full_output: torch.Tensor, windows: Sequence[Window],
                  boxes: Sequence[Box], scale: int) -> tuple[int, float] | None:
    """Check crops on the image itself: the first window whose crop's output differs.

    The model runs (no grad) on each crop of ``image`` [3,H,W]; inside the
    rows and columns the window's objective reads, its output must equal
    ``full_output`` [1,3,sH,sW] to :data:`CHECK_TOLERANCE`. This catches
    what a probe on random images cannot: strided or downsampling networks
    whose grid depends on the crop's offset, models that pad to a multiple,
    position-dependent models, context the probe missed.

    Returns:
        None when every crop agrees, else (window index, max difference).
    """
    if tf32_active(image):
        # Compare in true float32 on both sides (see exact_float32).
        with torch.no_grad(), exact_float32():
            full_output = model(image[None].clone())  # a copy: see engine.compute
    sH, sW = full_output.shape[-2:]
    tol = CHECK_TOLERANCE.get(full_output.dtype, 2e-5) * max(1.0, float(full_output.abs().max()))
    diffs = []
    for g in range(0, len(boxes), CHECK_BATCH):
        group = range(g, min(g + CHECK_BATCH, len(boxes)))
        crops = torch.stack([image[:, t:b, lft:r] for t, lft, b, r in (boxes[i] for i in group)])
        with torch.no_grad(), exact_float32():
            out = model(crops)
        if not isinstance(out, torch.Tensor) or out.shape[-2:] != (crops.shape[-2] * scale, crops.shape[-1] * scale):
            return g, float("inf")
        for j, i in enumerate(group):
            h, w, s = windows[i]
            (r0, r1), (c0, c1) = objective_rows(h, s, sH), objective_rows(w, s, sW)
            t, lft = boxes[i][0] * scale, boxes[i][1] * scale
            part = out[j, :, r0 - t : r1 - t, c0 - lft : c1 - lft]
            diffs.append((part - full_output[0, :, r0:r1, c0:c1]).abs().amax())
    worst = torch.stack(diffs).nan_to_num(nan=float("inf")).float().cpu()  # one read for all windows
    bad = (worst > tol).nonzero()
    if bad.numel() == 0:
        return None
    i = int(bad[0, 0])
    return i, float(worst[i])


def plan_crops(model, image: torch.Tensor, full_output: torch.Tensor, windows: Sequence[Window],
               scale: int, ties_matter: bool, crop: str | int) -> list[CropInfo]:
    """Decide, for each window, the crop it runs on or why it runs the whole image.

    Every window gets a crop or none does: a failed check means the model is
    not safe to crop on this image.

    Args:
        model: the engine's :class:`lamfast.lam.srmodel.SRForward` (its size requirements align the
            boxes), or an nn.Module, in attribution state.
        image: [C,H,W] the LR input; full_output: [1,C',sH,sW] its output.
        ties_matter: whether exact output ties change the result (the compat
            and official ``attr_grad``: :attr:`lamfast.LAMParams.tracks_ties`).
        crop: ``"auto"`` (measure the radius), ``"off"``, or a radius in LR px.
    """
    if not windows:
        return []
    H, W = image.shape[-2:]

    def whole(reason: str, radius: int | None = None) -> list[CropInfo]:
        return [CropInfo(None, radius, reason)] * len(windows)

    if crop == "off":
        return whole("crop='off'")
    if ties_matter:
        with torch.no_grad():
            tied = bool(exact_ties(full_output).any())
        if tied:
            # Zero differences anywhere in the output give NaN gradients in
            # compat mode, and which input entries they zero depends on the
            # whole image; only the whole image reproduces them.
            return whole("compat mode: the SR output has exact ties (zero gradient magnitude, the official "
                         "NaN steps), whose zeroing depends on the whole image")
    if crop == "auto":
        reach = influence_radius(model, (H, W), image.device, image.dtype, channels=image.shape[0])
        if reach.radius is None:
            return whole(reach.reason)
        radius, how = reach.radius, reach.reason
    else:
        radius, how = int(crop), f"radius {crop} LR px as given"
    boxes = crop_boxes(windows, scale, (H, W), radius, getattr(model, "size", SizeRequirements()))
    t, lft, b, r = boxes[0]
    if b - t == H and r - lft == W:
        return whole(f"the context radius ({radius} LR px) covers the whole {H}x{W} image", radius)
    bad = crop_mismatch(model, image, full_output, windows, boxes, scale)
    if bad is not None:
        i, diff = bad
        return whole(f"the model's output on the crop of window {tuple(windows[i])} differs from its output on the "
                     f"whole image by {diff:.2e} (a strided, padding or position-dependent model, or context "
                     f"beyond the radius)", radius)
    return [CropInfo(box, radius, how) for box in boxes]
