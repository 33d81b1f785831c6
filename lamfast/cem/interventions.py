"""What one CEM intervention writes into a block, for each task of the official code, and which patches
each block draws.

- ``"sr"``: the patch, resized to the block.
- ``"denoise"``: the patch plus Gaussian noise (σ = 50/255 in [0,1] units), clipped to [0,1] and
  truncated to 8 bits (``np.uint8(x * 255)``), as the official code makes its noisy patches.
- ``"derain"``: the patch with the image's rain layer over it, ``patch + β·rain`` rounded and
  saturated to 8 bits (OpenCV's ``addWeighted``); the rest of the input already carries that rain.

The draws are seeded per block and stage: block (i, j) of stage s draws from
``numpy.random.default_rng((seed, s, i, j))``. So a block gets the same patches (and noise)
whichever other blocks run, and a run that skips blocks outside the model's reach equals one that
runs every block. (The official code draws with Python's unseeded ``random.choice``, and its
noise from NumPy's global stream in block order.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lamfast.errors import LamfastError

TASKS = ("sr", "denoise", "derain")
NOISE_SIGMA = 50 / 255
COARSE, FINE = 0, 1


@dataclass(frozen=True)
class Rain:
    """The rain of a derain input: ``layer`` uint8 [H, W, C] (the official ``RainGenerator``'s ``rain``)
    and its weight ``beta``; the rainy input is ``addWeighted(clean, 1, layer, beta, 0)``."""

    layer: np.ndarray
    beta: float


def draws(seed: int, stage: int, block: tuple[int, int], n: int, bank: int) -> np.ndarray:
    """The bank indices of block ``(i, j)``'s ``n`` interventions in ``stage`` (0 coarse, 1 fine).

    Example:
        >>> from lamfast.cem.interventions import draws
        >>> bool((draws(0, 0, (3, 4), 5, 100) == draws(0, 0, (3, 4), 5, 100)).all())
        True
    """
    return np.random.default_rng((seed, stage, *block)).integers(bank, size=n)


def noise(seed: int, stage: int, block: tuple[int, int], shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """The Gaussian noise of a block's denoise interventions, [n, h, w, C] float64, from its own stream
    (after its patch draws)."""
    rng = np.random.default_rng((seed, stage, *block))
    rng.integers(1, size=shape[0])  # the patch draws come first in this stream
    return rng.normal(0.0, sigma, shape)


def noisy_input(clean: np.ndarray, sigma: float = NOISE_SIGMA, seed: int = 0) -> np.ndarray:
    """The official denoising input of a clean 8-bit image [H,W,C]: Gaussian noise of ``sigma`` (in [0,1]
    units) from ``np.random.seed(seed)``, clipped to [0,1], truncated to 8 bits.

    Example:
        >>> import numpy as np
        >>> from lamfast.cem.interventions import noisy_input
        >>> noisy = noisy_input(np.full((4, 4, 3), 128, np.uint8))
        >>> noisy.dtype, noisy.shape, bool((noisy != 128).any())
        (dtype('uint8'), (4, 4, 3), True)
    """
    gauss = np.random.RandomState(seed).normal(0, sigma, clean.shape)
    return np.uint8(np.clip(gauss + clean / 255, 0, 1) * 255)


def noisy_patches(patches: np.ndarray, gauss: np.ndarray) -> np.ndarray:
    """The official noisy patch: ``uint8(clip(patch / 255 + noise, 0, 1) * 255)`` (truncation)."""
    return (np.clip(patches / 255 + gauss, 0, 1) * 255).astype(np.uint8)


def rainy_patches(patches: np.ndarray, rain_block: np.ndarray, beta: float) -> np.ndarray:
    """``addWeighted(patch, 1, rain, beta, 0)``: in float32, rounded half to even, saturated to 8 bits."""
    out = patches.astype(np.float32) + np.float32(beta) * rain_block.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def block_contents(task: str, resized: np.ndarray, idx: np.ndarray, *, seed: int, stage: int,
                   block: tuple[int, int], rows: slice, cols: slice, rain: Rain | None,
                   sigma: float = NOISE_SIGMA) -> np.ndarray:
    """What block ``(i, j)``'s interventions write: [n, b, b, C] uint8, where ``resized`` holds the bank
    at block size, ``idx`` the patches drawn, and ``rows``/``cols`` the block's pixels in the image
    (for the rain layer)."""
    patches = resized[idx]
    if task == "denoise":
        return noisy_patches(patches, noise(seed, stage, block, patches.shape, sigma))
    if task == "derain":
        b = patches.shape[1]
        layer = np.zeros((b, b, patches.shape[-1]), np.uint8)
        part = rain.layer[rows, cols]
        layer[:part.shape[0], :part.shape[1]] = part
        return rainy_patches(patches, layer[None], rain.beta)
    return patches


def check_task(task: str, rain, image_shape: tuple[int, int, int]) -> Rain | None:
    """The task's extra input, checked: a :class:`Rain` for ``"derain"``, None otherwise.

    Raises:
        LamfastError: an unknown task, or rain missing, misshaped or given for another task.
    """
    if task not in TASKS:
        raise LamfastError(f"task must be one of {', '.join(map(repr, TASKS))}, got {task!r}", param="task")
    if task != "derain":
        if rain is not None:
            raise LamfastError(f"rain is the rain layer of task='derain', not of task={task!r}", param="rain")
        return None
    if rain is None:
        raise LamfastError("task='derain' needs rain=(layer, beta): the uint8 rain layer [H,W,C] and its weight, "
                           "as the official RainGenerator returns them", param="rain")
    if isinstance(rain, Rain):
        layer, beta = rain.layer, rain.beta
    else:
        try:
            layer, beta = rain
        except (TypeError, ValueError):
            raise LamfastError("rain must be (layer, beta): a uint8 array [H,W,C] and a float", param="rain") from None
    layer = layer.detach().cpu().numpy() if hasattr(layer, "detach") else np.asarray(layer)
    if layer.ndim == 2:
        layer = layer[..., None]
    C, H, W = image_shape
    if layer.dtype != np.uint8 or layer.shape[:2] != (H, W) or layer.shape[2] not in (1, C):
        raise LamfastError(f"the rain layer must be uint8 [{H},{W},{C}] (the input's size), got {layer.dtype} "
                           f"{layer.shape}", param="rain")
    if layer.shape[2] != C:
        layer = np.repeat(layer, C, axis=2)
    return Rain(np.ascontiguousarray(layer), float(beta))


__all__ = ["COARSE", "FINE", "NOISE_SIGMA", "Rain", "TASKS", "block_contents", "check_task", "draws", "noise",
           "noisy_input", "noisy_patches", "rainy_patches"]
