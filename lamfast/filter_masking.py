"""FAIG's check of the filters it finds (Xie et al., NeurIPS 2021): put the baseline's kernels back into the
fine-tuned model at the top-ranked filters and see how much worse it restores.

For each share (the official 1, 3, 5 and 10 % of all filters), the ``int(F · share)`` top filters of a
ranking are replaced by the baseline's kernels at the same places (the official ``mask_neurons``), and
the masked model's PSNR on both degradations is compared with the target's: masking the filters found
for a degradation should cost much more on that degradation than masking as many random filters
(drawn with ``numpy.random.default_rng(seed)``), and little on the other one. PSNR follows
:data:`lamfast.quality.CONVENTION` (Y channel, 8-bit, a border of ``scale`` pixels), averaged over the
images. The models are never changed: masking works on a copy.
"""
from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from lamfast.descriptor import module_of
from lamfast.errors import LamfastError
from lamfast.modelstate import attribution_state
from lamfast.quality import sr_psnr

SHARES = (0.01, 0.03, 0.05, 0.10)


def masked_model(target_model: Any, baseline_model: Any, filters: Sequence[tuple[str, int, int]],
                 chosen: Sequence[int]) -> nn.Module:
    """A copy of the target whose ``chosen`` filters (indices into ``filters``, as
    :attr:`lamfast.FAIGResult.filters` names them) hold the baseline's kernels.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lamfast.filter_masking import masked_model
        >>> base, tuned = nn.Conv2d(2, 1, 3), nn.Conv2d(2, 1, 3)
        >>> m = masked_model(tuned, base, [("weight", 0, 0), ("weight", 0, 1)], [1])
        >>> torch.equal(m.weight[0, 1], base.weight[0, 1]), torch.equal(m.weight[0, 0], tuned.weight[0, 0])
        (True, True)
    """
    target, base = module_of(target_model), module_of(baseline_model)
    out = copy.deepcopy(target)
    params, base_params = dict(out.named_parameters()), dict(base.named_parameters())
    with torch.no_grad():
        for idx in chosen:
            name, o, i = filters[int(idx)]
            params[name][o, i] = base_params[name][o, i].to(params[name].dtype)
    return out


@dataclass
class MaskingRow:
    """One share of masked filters, chosen by the ranking (``how="top"``) or at random.

    Attributes:
        share, k: the share of all filters and their number; how: ``"top"`` or ``"random"``.
        psnr1, psnr2: the masked model's mean PSNR on the img1 and img2 inputs.
        drop1, drop2: the target's PSNR minus the masked model's (dB; positive: worse).
    """

    share: float
    k: int
    how: str
    psnr1: float
    psnr2: float
    drop1: float
    drop2: float


@dataclass
class MaskingStudy:
    """The target's PSNR on both degradations and every masking row (:func:`masking_study`).

    Example:
        >>> from lamfast.filter_masking import MaskingRow, MaskingStudy
        >>> s = MaskingStudy(30.0, 28.0, [MaskingRow(0.01, 5, "top", 25.0, 27.5, 5.0, 0.5),
        ...                               MaskingRow(0.01, 5, "random", 29.5, 27.9, 0.5, 0.1)])
        >>> s.rows_for("top")[0].drop1 > s.rows_for("random")[0].drop1
        True
    """

    target_psnr1: float
    target_psnr2: float
    rows: list[MaskingRow] = field(default_factory=list)
    seed: int = 0

    def rows_for(self, how: str) -> list[MaskingRow]:
        return [r for r in self.rows if r.how == how]

    def summary(self) -> dict[str, Any]:
        return {"target_psnr1": self.target_psnr1, "target_psnr2": self.target_psnr2, "seed": self.seed,
                "rows": [r.__dict__ for r in self.rows]}


def _mean_psnr(model: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    values = []
    with attribution_state(model), torch.no_grad():
        for x, gt in pairs:
            like = next(iter(model.parameters()), x)
            y = model(x[None].to(like.device, like.dtype))[0].float().cpu()
            if y.shape != gt.shape:
                raise LamfastError(f"the model returns {tuple(y.shape)} for an input, and its gt is "
                                   f"{tuple(gt.shape)}", param="triples")
            values.append(sr_psnr(y.clamp(0, 1), gt.float().cpu(), y.shape[-1] // x.shape[-1]))
    return statistics.fmean(values)


def masking_study(baseline_model: Any, target_model: Any, ranking: torch.Tensor, filters: Sequence, triples,
                  *, shares: Sequence[float] = SHARES, seed: int = 0) -> MaskingStudy:
    """Mask the top ``shares`` of ``ranking`` (and as many random filters) in the target; PSNR drops.

    Args:
        baseline_model, target_model: as :func:`lamfast.faig`.
        ranking: filter indices, best first (:meth:`lamfast.filter_attribution.FAIGDatasetResult.ranking`).
        filters: what each index names (:attr:`~lamfast.filter_attribution.FAIGDatasetResult.filters`).
        triples: (img1, img2, gt) [C,H,W] tensors per image.
        shares: shares of all filters to mask (default the official 1, 3, 5, 10 %).
        seed: of the random filters.
    Returns:
        MaskingStudy.
    """
    triples = list(triples)
    if not triples:
        raise LamfastError("no image triples to measure the masked models on", param="triples")
    if any(not 0 < s <= 1 for s in shares):
        raise LamfastError(f"shares must lie in (0, 1], got {list(shares)}", param="shares")
    target = module_of(target_model)
    ones, twos = [(a, gt) for a, _, gt in triples], [(b, gt) for _, b, gt in triples]
    study = MaskingStudy(_mean_psnr(target, ones), _mean_psnr(target, twos), seed=seed)
    order = [int(i) for i in ranking]
    shuffled = [int(i) for i in np.random.default_rng(seed).permutation(len(filters))]
    for share in shares:
        k = int(len(filters) * share)
        for how, chosen in (("top", order[:k]), ("random", shuffled[:k])):
            model = masked_model(target, baseline_model, filters, chosen)
            p1, p2 = _mean_psnr(model, ones), _mean_psnr(model, twos)
            study.rows.append(MaskingRow(share, k, how, p1, p2, study.target_psnr1 - p1, study.target_psnr2 - p2))
    return study


__all__ = ["MaskingRow", "MaskingStudy", "SHARES", "masked_model", "masking_study"]
