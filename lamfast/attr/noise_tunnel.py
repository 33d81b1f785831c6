"""NoiseTunnel: SmoothGrad, SmoothGrad², VarGrad around any attribution method (captum's semantics)."""
from __future__ import annotations

import torch

from lamfast.attr.base import AttrError, Attribution, TargetSpec, target_indices

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


class NoiseTunnel:
    """``NoiseTunnel(method).attribute(inputs, nt_type=..., nt_samples=..., stdevs=..., target=...)``.

    Noise is drawn exactly as captum draws it (one ``torch.normal`` of
    shape [B * nt_samples, ...]), so a seeded run gives captum's numbers.

    Example:
        >>> import torch
        >>> from lamfast.attr import NoiseTunnel, Saliency
        >>> from lamfast.models.classifier import load_classifier
        >>> smooth = NoiseTunnel(Saliency(load_classifier("bundled").model))
        >>> _ = torch.manual_seed(0)  # the noise draws
        >>> smooth.attribute(torch.rand(1, 3, 64, 64), nt_type="smoothgrad_sq", nt_samples=4, stdevs=0.1, target=3).shape
        torch.Size([1, 3, 64, 64])
    """

    def __init__(self, method: Attribution):
        self.method = method

    def attribute(self, inputs: torch.Tensor, nt_type: str = "smoothgrad", nt_samples: int = 5, stdevs: float = 1.0,
                  target: TargetSpec = None, **kwargs) -> torch.Tensor:
        if nt_type not in NT_TYPES:
            raise AttrError(f"nt_type must be one of {NT_TYPES}, got {nt_type!r}")
        if nt_samples < 1:
            raise AttrError(f"nt_samples must be >= 1, got {nt_samples}")
        B = inputs.shape[0]
        expanded = (B * nt_samples, *inputs.shape[1:])
        std = torch.tensor(float(stdevs), device=inputs.device).repeat(expanded)
        noisy = inputs.repeat_interleave(nt_samples, dim=0) + torch.normal(0, std)
        t = target_indices(target, B, inputs.device)
        t = None if t is None else t.repeat_interleave(nt_samples)
        if "baselines" in kwargs and isinstance(kwargs["baselines"], torch.Tensor):
            kwargs["baselines"] = kwargs["baselines"].expand_as(inputs).repeat_interleave(nt_samples, dim=0)
        attr = self.method.attribute(noisy, target=t, **kwargs)
        attr = attr.reshape(B, nt_samples, *inputs.shape[1:])
        mean = attr.sum(1) * (1 / nt_samples)
        if nt_type == "smoothgrad":
            return mean
        mean_sq = (attr * attr).sum(1) * (1 / nt_samples)
        return mean_sq if nt_type == "smoothgrad_sq" else mean_sq - mean * mean
