"""What a stored result row shows: the images it was computed on and its map, as the run made them.

The report, its LAM figure and the explorer draw rows with these, so a row
looks the same wherever it is drawn.
"""
from __future__ import annotations

import json

import torch
from PIL import Image

from lamfast.metrics import saliency


def shown_frame(row: dict) -> int | None:
    """For a clip's row, the input frame the figures draw: the one with the largest share; None for an image."""
    if not row.get("video"):
        return None
    shares = json.loads(row["video"])["frame_share"]
    return max(range(len(shares)), key=lambda t: (shares[t], -t))


def row_views(row: dict) -> tuple[Image.Image, Image.Image] | None:
    """The row's (HR, LR) images as the figures draw them, made as the run made them: for a clip, the
    HR of the attributed output frame and the LR of the shown input frame (None when the image is no
    longer there)."""
    from lamfast.request import prepare_clip, prepare_input

    params = json.loads(row["params"])
    frame = shown_frame(row)
    # the model's channels: the run's color, else 1 band (gray) or RGB, as the attribution has them
    channels = row["attribution"].shape[0 if frame is None else 1]
    color = params.get("color") or ("bands" if str(row["image"]).lower().endswith(".npy")
                                    else "gray" if channels == 1 else "rgb")
    try:
        if frame is not None:
            hr, lr = prepare_clip(None, row["image"], params.get("lr_input", False), scale=row["scale"],
                                  color=color).views()
            out = json.loads(row["video"])["frame"]
            # the attributed output frame's HR (a centre-frame model's one output: the middle frame)
            return hr[out % len(hr) if out is not None else (len(hr) + 1) // 2 - 1], lr[frame]
        return prepare_input(None, row["image"], params.get("lr_input", False), scale=row["scale"],
                             color=color).views()
    except ValueError:
        return None


def lr_image(row: dict) -> Image.Image | None:
    """The row's LR input (a clip's shown frame), or None when it is no longer there."""
    views = row_views(row)
    return None if views is None else views[1]


def row_saliency(row: dict) -> torch.Tensor:
    """The row's saliency [H,W]; for a clip, its shown frame on the clip's joint scale."""
    frame = shown_frame(row)
    maps = saliency(torch.from_numpy(row["attribution"]))
    return maps if frame is None else maps[frame]


__all__ = ["lr_image", "row_saliency", "row_views", "shown_frame"]
