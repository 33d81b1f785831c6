"""Attention inside SR transformers (SwinIR, HAT and modules built the same way).

:func:`sr_attention` runs the model once on an LR image and records, for one
LR location (or the centre of an SR window):

- **window attention**, per layer and head: the row of the attention matrix
  (the softmax output inside each window-attention module) of the token at
  that location, placed back at the image positions of its window's tokens.
  Shifted windows are unshifted, so every map is in image coordinates.
- **channel attention**, per layer: the sigmoid gate ``[C]`` of every
  CAB/RCAN-style block (a Sigmoid whose output is ``[B, C, 1, 1]``).

A window-attention module is one with a ``relative_position_bias_table``
and a ``softmax`` child, called by a block that holds it as ``.attn``,
knows its ``window_size`` and ``shift_size``, and gets the feature size as
its second argument (``block(x, x_size, ...)``), as SwinIR's and HAT's
blocks do. HAT's overlapping cross-attention (OCAB) is not of this form and
is not recorded.

Shapes: maps are [heads, H, W] over the model's (padded) LR feature grid,
cut to the image's H x W.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lamfast.modelstate import attribution_state, model_device

from lamfast.errors import LamfastError


class SRAttentionError(LamfastError):
    """The model has no attention of the recorded kinds, or the location is outside the image."""


@dataclass
class WindowLayer:
    """One window-attention layer at the query location.

    Attributes:
        name: the attention module's path in the model.
        window_size, shift: the block's window side and shift (tokens).
        maps: [heads, H, W] attention of the query token over image positions (zeros outside its window).

    Example:
        >>> import torch
        >>> from lamfast.attention import WindowLayer
        >>> maps = torch.zeros(2, 4, 4)
        >>> maps[0, 0, 0], maps[1, 0, 1] = 1.0, 1.0  # head 0 looks at (0, 0), head 1 at (0, 1)
        >>> WindowLayer("attn", window_size=4, shift=0, maps=maps).fused[0, :2].tolist()
        [0.5, 0.5]
    """

    name: str
    window_size: int
    shift: int
    maps: torch.Tensor

    @property
    def fused(self) -> torch.Tensor:
        """[H, W]: the mean over heads."""
        return self.maps.mean(dim=0)


@dataclass
class SRAttention:
    """What :func:`sr_attention` records at one LR location: window attention per layer, channel gates per block.

    Example:
        >>> import torch
        >>> from lamfast.attention import SRAttention, WindowLayer
        >>> layer = WindowLayer("blocks.0.attn", window_size=8, shift=0, maps=torch.rand(2, 16, 16))  # 2 heads
        >>> res = SRAttention(location=(5, 6), window=[layer])  # what sr_attention returns for a one-layer model
        >>> res.window[0].fused.shape  # heads fused by their mean
        torch.Size([16, 16])
    """
    location: tuple[int, int]
    window: list[WindowLayer] = field(default_factory=list)
    channel: list[tuple[str, torch.Tensor]] = field(default_factory=list)  # (module path, gate [C])


def _attention_blocks(model: nn.Module) -> list[tuple[str, nn.Module, nn.Module]]:
    """(attention path, attention module, its block) for every window-attention module."""
    found = []
    for name, block in model.named_modules():
        attn = getattr(block, "attn", None)
        if (isinstance(attn, nn.Module) and hasattr(attn, "relative_position_bias_table")
                and isinstance(getattr(attn, "softmax", None), nn.Softmax)
                and hasattr(block, "window_size") and hasattr(block, "shift_size")):
            found.append((f"{name}.attn" if name else "attn", attn, block))
    return found


def _ints(value: Any) -> int:
    return int(value[0]) if isinstance(value, (tuple, list)) else int(value)


def sr_attention(model: nn.Module, image: torch.Tensor, location: tuple[int, int] | None = None,
                 window: tuple[int, int, int] | None = None, scale: int | None = None) -> SRAttention:
    """Record window and channel attention at one LR location.

    Args:
        model: an SR network, [1,3,H,W] -> [1,3,sH,sW].
        image: the LR input [3,H,W] in the model's input range.
        location: (row, col) in LR pixels; default the image centre.
        window: instead of ``location``, an SR window (h, w, size): its centre, divided by ``scale``.
        scale: the SR factor, needed with ``window``.
    Returns:
        SRAttention.
    Raises:
        SRAttentionError: no attention module of either kind, or a location outside the image.

    Example:
        >>> import torch
        >>> from lamfast.optional import import_optional
        >>> SwinIR = import_optional("spandrel.architectures.SwinIR", "this example").SwinIR
        >>> model = SwinIR(upscale=2, img_size=16, window_size=8, depths=[2], num_heads=[2], embed_dim=8, mlp_ratio=2,
        ...                upsampler="pixelshuffle").eval()  # random weights: two blocks, the second shifted
        >>> from lamfast.attention import sr_attention
        >>> res = sr_attention(model, torch.rand(3, 16, 16), location=(5, 6))
        >>> res.location, res.channel, [(w.name, w.shift, tuple(w.maps.shape)) for w in res.window]
        ((5, 6), [], [('layers.0.residual_group.blocks.0.attn', 0, (2, 16, 16)), ('layers.0.residual_group.blocks.1.attn', 4, (2, 16, 16))])
    """
    if image.dim() == 4:
        image = image[0]
    H, W = image.shape[-2:]
    if window is not None:
        if not scale:
            raise SRAttentionError("an SR window needs the model's scale to find its LR location")
        h, w, size = window
        location = ((h + size // 2) // scale, (w + size // 2) // scale)
    r, c = location if location is not None else (H // 2, W // 2)
    if not (0 <= r < H and 0 <= c < W):
        raise SRAttentionError(f"location ({r}, {c}) is outside the {H}x{W} image")
    blocks = _attention_blocks(model)
    context: dict[int, tuple[int, int]] = {}
    probs: dict[str, torch.Tensor] = {}
    gates: list[tuple[str, torch.Tensor]] = []
    handles = []

    def block_pre(block_id):
        def hook(module, args, kwargs):
            size = args[1] if len(args) > 1 else kwargs.get("x_size")
            context[block_id] = (int(size[0]), int(size[1]))
        return hook

    def softmax_hook(name):
        def hook(module, inputs, output):
            probs[name] = output.detach()
        return hook

    def gate_hook(name):
        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[-2:] == (1, 1):
                gates.append((name, output.detach()[0, :, 0, 0].float().cpu()))
        return hook

    for name, attn, block in blocks:
        handles.append(block.register_forward_pre_hook(block_pre(id(block)), with_kwargs=True))
        handles.append(attn.softmax.register_forward_hook(softmax_hook(name)))
    for name, module in model.named_modules():
        if isinstance(module, nn.Sigmoid):
            handles.append(module.register_forward_hook(gate_hook(name)))
    try:
        with attribution_state(model), torch.no_grad():
            model(image[None].to(model_device(model)).clone())
    finally:
        for h in handles:
            h.remove()
    if not probs and not gates:
        raise SRAttentionError("the model has no window attention (SwinIR/HAT-style) and no channel attention "
                               "(CAB/RCAN-style) to record")
    result = SRAttention((r, c), channel=gates)
    for name, attn, block in blocks:
        if name not in probs or id(block) not in context:
            continue
        ph, pw = context[id(block)]
        ws, shift = _ints(block.window_size), _ints(block.shift_size)
        A = probs[name]  # [nW*B, heads, N, N]
        per_row = pw // ws
        y, x = (r - shift) % ph, (c - shift) % pw  # the query in the shifted grid
        win = (y // ws) * per_row + (x // ws)
        token = (y % ws) * ws + (x % ws)
        row = A[win, :, token, :].float().cpu()  # [heads, N]
        maps = torch.zeros(row.shape[0], ph, pw)
        j = torch.arange(ws * ws)
        ys = ((y // ws) * ws + j // ws + shift) % ph
        xs = ((x // ws) * ws + j % ws + shift) % pw
        maps[:, ys, xs] = row
        result.window.append(WindowLayer(name, ws, shift, maps[:, :H, :W]))
    return result


def attention_grid(result: SRAttention, lr, zoom: int = 4, max_layers: int | None = None):
    """A layer x head grid of the window-attention maps (rows: layers; last column: the fused map),
    each over the LR image: every layer, or the first ``max_layers``, which a last line then says.
    Returns a PIL image.

    Example:
        >>> import torch
        >>> from PIL import Image
        >>> from lamfast.attention import SRAttention, WindowLayer, attention_grid
        >>> layers = [WindowLayer(f"blocks.{i}.attn", 8, 4 * i, torch.rand(3, 16, 16)) for i in range(2)]
        >>> grid = attention_grid(SRAttention((5, 6), layers), Image.new("RGB", (16, 16)), zoom=2)
        >>> grid.size  # 2 rows of 3 heads and the fused map, each 32 px with a 14-px label
        (136, 96)
    """
    from PIL import Image, ImageDraw

    from lamfast.overlay import jet

    layers = result.window[:max_layers]
    if not layers:
        raise SRAttentionError("no window attention was recorded")
    footer = 14 if len(layers) < len(result.window) else 0
    heads = max(layer.maps.shape[0] for layer in layers)
    W, H = lr.size
    cell_w, cell_h = W * zoom, H * zoom
    label = 14
    canvas = Image.new("RGB", ((heads + 1) * (cell_w + 2), len(layers) * (cell_h + label + 2) + footer), "white")
    draw = ImageDraw.Draw(canvas)
    base = lr.convert("RGB").resize((cell_w, cell_h), Image.NEAREST)
    for i, layer in enumerate(layers):
        for k, m in enumerate([*layer.maps, layer.fused]):
            peak = float(m.max())
            heat = Image.fromarray(jet(m / peak if peak > 0 else m)).resize((cell_w, cell_h), Image.NEAREST)
            cell = Image.blend(base, heat, 0.6)
            x, y = k * (cell_w + 2), i * (cell_h + label + 2)
            canvas.paste(cell, (x, y + label))
            # short labels: layer i (its shift), head k or the fused map; layer names are in result.window
            title = (f"L{i} s{layer.shift} h{k}" if k < len(layer.maps) else f"L{i} fused")
            draw.text((x + 1, y), title, fill=(0, 0, 0))
    if footer:
        draw.text((1, canvas.height - footer + 1), f"first {len(layers)} of {len(result.window)} layers",
                  fill=(0, 0, 0))
    return canvas


def attention_overlays(result: SRAttention, lr, zoom: int = 4):
    """One overlay per layer of the fused window attention over the LR image, side by side (PIL image).

    Example:
        >>> import torch
        >>> from PIL import Image
        >>> from lamfast.attention import SRAttention, WindowLayer, attention_overlays
        >>> res = SRAttention((5, 6), [WindowLayer("attn", 8, 0, torch.rand(2, 16, 16))])
        >>> attention_overlays(res, Image.new("RGB", (16, 16)), zoom=2).size  # one 32-px overlay per layer, 2-px gaps
        (34, 32)
    """
    from PIL import Image

    from lamfast.overlay import jet

    if not result.window:
        raise SRAttentionError("no window attention was recorded")
    W, H = lr.size
    base = lr.convert("RGB").resize((W * zoom, H * zoom), Image.NEAREST)
    canvas = Image.new("RGB", (len(result.window) * (W * zoom + 2), H * zoom), "white")
    for i, layer in enumerate(result.window):
        m = layer.fused
        peak = float(m.max())
        heat = Image.fromarray(jet(m / peak if peak > 0 else m)).resize(base.size, Image.NEAREST)
        canvas.paste(Image.blend(base, heat, 0.6), (i * (W * zoom + 2), 0))
    return canvas


__all__ = ["SRAttention", "SRAttentionError", "WindowLayer", "attention_grid", "attention_overlays", "sr_attention"]
