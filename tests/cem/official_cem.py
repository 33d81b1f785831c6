"""The CEM algorithm written out as the official code runs it (demo_causal_effect_calculation.py and
demo_CEM_generation.py of J-FHu/CEM, from their description): batch 1, every block, every
intervention built as a whole 8-bit image in numpy and made a tensor as ToTensor does.

- blocks of ``mask_block_size // sr`` input pixels, ``ceil(H / b) x ceil(W / b)`` of them;
- an intervention: the 8-bit input with one block overwritten (SR: the patch resized with
  ``cv2.resize(..., INTER_CUBIC)``; DN: the patch plus Gaussian noise, clipped, ``np.uint8(x * 255)``;
  DR: the clean image with the patch, then ``cv2.addWeighted(img, 1, rain, beta, 0)`` over all of it);
- the output clipped to [0,1], ``np.uint8(np.round(x * 255))``; the ROI's PSNR against the ground
  truth's ROI, ``20 log10(255 / sqrt(mse))`` in float64;
- coarse PSNR for every block, fine PSNR where ``max |O - PSNR_C| >= tol``, the fine mean replacing
  the coarse mean where it is nonzero, ``CEM = O - mean``, ``|CEM| < tol`` set to 0.

Which patch (and noise) an intervention draws is the one thing lamfast defines itself (the official
draws are unseeded); the oracle takes them from ``lamfast.cem.interventions.draws`` / ``noise``, the
documented contract. With a one-patch bank every draw is the same.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from lamfast.cem.interventions import draws, noise


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 20.0 * np.log10(255.0 / np.sqrt(mse))


def official_cem(model, lr_u8: np.ndarray, gt: np.ndarray, h: int, w: int, roi: int, *, scale: int,
                 block_size: int, bank: np.ndarray, coarse: int, fine: int, tol: float, seed: int, task: str = "sr",
                 clean_u8: np.ndarray | None = None, rain: np.ndarray | None = None, beta: float | None = None,
                 dtype=torch.float32, batch: int = 1) -> dict:
    """``lr_u8`` [H,W,C] the 8-bit input; ``bank`` [P,h,w,C] uint8. Returns effect, psnr, forwards.

    ``batch``: interventions per forward, in the official order (every block's coarse ones, then the
    fine ones); the official code runs 100 (its unperturbed forward is batch 1)."""
    blk = block_size // scale
    H, W = lr_u8.shape[:2]
    nb = (math.ceil(H / blk), math.ceil(W / blk))
    to_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float().div(255)  # noqa: E731
    forwards = 0

    def roi_psnrs(images: list[np.ndarray], n: int) -> list[float]:
        nonlocal forwards
        values = []
        for g in range(0, len(images), n):
            forwards += len(images[g:g + n])
            with torch.no_grad():
                outs = model(torch.stack([to_tensor(a) for a in images[g:g + n]]).to(dtype))
            for out in outs:
                out = out.cpu().numpy().transpose(1, 2, 0).clip(0, 1)
                out = np.uint8(np.round(out * 255))
                values.append(psnr(out[h:h + roi, w:w + roi], gt[h:h + roi, w:w + roi]))
        return values

    def intervention(block, stage, k_idx, n) -> np.ndarray:
        x, y = block
        idx = draws(seed, stage, block, n, len(bank))[k_idx]
        patch = bank[idx]
        if patch.shape[:2] != (blk, blk):
            patch = cv2.resize(patch, (blk, blk), interpolation=cv2.INTER_CUBIC)
            patch = patch if patch.ndim == 3 else patch[..., None]
        if task == "denoise":
            gauss = noise(seed, stage, block, (n, blk, blk, patch.shape[-1]), 50 / 255)[k_idx]
            patch = np.uint8(np.clip(patch / 255 + gauss, 0, 1) * 255)
        base = clean_u8 if task == "derain" else lr_u8
        image = np.array(base)
        part = image[x * blk:(x + 1) * blk, y * blk:(y + 1) * blk, :]
        part[...] = patch[:part.shape[0], :part.shape[1]]
        if task == "derain":
            image = cv2.addWeighted(image, 1, rain, beta, 0)
            image = image if image.ndim == 3 else image[..., None]
        return image

    (origin,) = roi_psnrs([lr_u8], 1)
    psnr_c = np.zeros((*nb, coarse))
    psnr_f = np.zeros((*nb, fine))
    slots = [(i, j, k) for i in range(nb[0]) for j in range(nb[1]) for k in range(coarse)]
    for slot, value in zip(slots, roi_psnrs([intervention(s[:2], 0, s[2], coarse) for s in slots], batch)):
        psnr_c[slot] = value
    error = np.abs(origin - psnr_c)
    slots = [(i, j, m) for i in range(nb[0]) for j in range(nb[1]) if np.max(error[i, j]) >= tol
             for m in range(fine)]
    for slot, value in zip(slots, roi_psnrs([intervention(s[:2], 1, s[2], fine) for s in slots], batch)):
        psnr_f[slot] = value
    cem_c = np.mean(psnr_c, 2)
    if fine:
        cem_f = np.mean(psnr_f, 2)
        for i, j in zip(*np.nonzero(cem_f)):
            cem_c[i, j] = cem_f[i, j]
    effect = origin - cem_c
    effect[np.abs(effect) < tol] = 0
    return {"effect": effect, "psnr": origin, "forwards": forwards, "coarse": psnr_c, "fine": psnr_f}
