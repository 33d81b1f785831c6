"""Blur Integrated Gradients (Xu et al., CVPR 2020) on lamfast's blur path and path engine.

The path runs from the image blurred with ``max_sigma`` down to the image
itself through :func:`lamfast.blur_path` (Gaussian kernels of every step,
reflect-101 borders), and each step is weighted by its own derivative
``fold·(γ_j − γ_{j−1})`` — PAIR's implementation applies the last step's Δσ
to a whole batch. Sum of the result ≈ F(x) − F(blurred x).
"""
from __future__ import annotations

import math

import torch

from lamfast.attr.base import AttrError, Attribution, TargetSpec, scores, target_indices
from lamfast.modelstate import attribution_state
from lamfast.ops import blur_path
from lamfast.path import integrate_path


class BlurIG(Attribution):
    """Blur Integrated Gradients (Xu et al., CVPR 2020) on lamfast's blur path and path engine.

    The arguments keep BlurIG's and captum's names; on the shared op they are LAM's: ``n_steps`` is
    ``fold``, ``max_sigma`` is ``sigma``, ``kernel_size`` is ``l``, and ``internal_batch_size`` is
    ``batch_size`` (inputs per forward/backward pass).

    Example:
        >>> import torch
        >>> from lamfast.attr import BlurIG
        >>> from lamfast.models.classifier import load_classifier
        >>> blur_ig = BlurIG(load_classifier("bundled").model)
        >>> a = blur_ig.attribute(torch.rand(2, 3, 64, 64), target=3, max_sigma=5.0, n_steps=8)  # 31-tap kernels
        >>> tuple(a.shape)
        (2, 3, 64, 64)
    """
    def attribute(self, inputs: torch.Tensor, target: TargetSpec = None, max_sigma: float = 10.0, n_steps: int = 50,
                  kernel_size: int | None = None, internal_batch_size: int | None = None) -> torch.Tensor:
        """Args:
            inputs: [B,C,H,W] float images.
            max_sigma: blur at the start of the path.
            n_steps: path steps (right Riemann sum).
            kernel_size: odd Gaussian support; default ``2·ceil(3·max_sigma) + 1``.
            internal_batch_size: path points per forward across the batch (default: as in
                IntegratedGradients).
        Returns:
            [B,C,H,W] attributions.
        """
        self._check(inputs)
        if inputs.dim() != 4:
            raise AttrError(f"BlurIG needs images [B,C,H,W], got {tuple(inputs.shape)}")
        if not max_sigma > 0:
            raise AttrError(f"max_sigma must be > 0, got {max_sigma}")
        l = kernel_size or 2 * math.ceil(3 * max_sigma) + 1
        x = inputs.detach()
        B = x.shape[0]
        t = target_indices(target, B, x.device)
        path, deriv = blur_path(x, n_steps, float(max_sigma), l)  # [B, S, C, H, W]

        def objective(points: torch.Tensor, chunk) -> torch.Tensor:
            return scores(self.model, points, None if t is None else t[chunk.lead_index])

        with attribution_state(self.model):
            total = integrate_path(objective, path, deriv, batch_size=internal_batch_size or B * n_steps,
                                   zero_nan=False).total[0]
        return (total / n_steps).to(x.dtype)
