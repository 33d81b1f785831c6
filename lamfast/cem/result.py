"""What :func:`lamfast.cem` returns: the signed causal effect map of one ROI and how it was computed."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class CEMResult:
    """The causal effect map of one ROI.

    Attributes:
        effect: [nH, nW] float64, dB: PSNR of the unperturbed ROI minus the mean PSNR under the
            block's interventions (the fine mean where the fine stage ran), 0 where ``|effect| <
            tol`` and for blocks outside the model's reach. Positive: the block helps the ROI
            (replacing it lowers the PSNR); negative: it hurts. Blocks inside the ROI hold their
            effect too (the official figures paint them over).
        psnr: the ROI's PSNR (dB) against the ground truth, unperturbed.
        roi: ``(h, w, size)`` in output pixels; scale: the model's scale; block: block side in
            input pixels (``block_size // scale``).
        roi_blocks: [nH, nW] bool, the blocks the official code counts as the ROI's.
        reached: [nH, nW] bool, the blocks that ran interventions (inside the model's reach of the
            ROI); the others have effect 0 with no forward.
        coarse_psnr: [nH, nW, coarse] PSNR of every coarse intervention (the unperturbed PSNR for
            blocks outside the reach); fine_psnr: [nH, nW, fine], 0 where the fine stage did not run.
        forwards: images (batch rows) the model ran on, every stage included (reach probe and crop
            check too); official_forwards: what the official loop runs for the same result (the
            whole image once, every block x coarse, the fine blocks x fine).
        box: ``(top, left, bottom, right)`` of the input crop the interventions ran on, or None (the
            whole image); path: one line, which path ran and why.
        patches: where the bank came from; resize: how patches were made the block's size
            (``"none"``, ``"opencv"`` or ``"torch"``).
        params: the call's parameters (task, block_size, coarse, fine, tol, seed, ...).
        timings: seconds per stage.

    Example:
        >>> import numpy as np
        >>> from lamfast.cem import CEMResult
        >>> r = CEMResult(effect=np.array([[0.5, -0.2], [0.0, 3.0]]), psnr=30.0, roi=(4, 4, 4), scale=4, block=1,
        ...               roi_blocks=np.array([[False, False], [False, True]]))
        >>> r.counts, r.effect_range
        ({'positive': 1, 'negative': 1, 'zero': 1}, (-0.2, 0.5))
    """

    effect: np.ndarray
    psnr: float
    roi: tuple[int, int, int]
    scale: int
    block: int
    roi_blocks: np.ndarray
    reached: np.ndarray | None = None
    coarse_psnr: np.ndarray | None = None
    fine_psnr: np.ndarray | None = None
    forwards: int = 0
    official_forwards: int = 0
    box: tuple[int, int, int, int] | None = None
    path: str = ""
    patches: str = ""
    resize: str = "none"
    params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """Blocks outside the ROI with a positive, negative and zero effect."""
        outside = self.effect[~self.roi_blocks]
        return {"positive": int((outside > 0).sum()), "negative": int((outside < 0).sum()),
                "zero": int((outside == 0).sum())}

    def official_counts(self) -> tuple[int, int, int]:
        """The official table's (negative, positive, zero): the ROI's blocks are set to 999 first, so
        they count as positive there."""
        c = self.counts
        return c["negative"], c["positive"] + int(self.roi_blocks.sum()), c["zero"]

    @property
    def effect_range(self) -> tuple[float, float]:
        """(min, max) of the effect outside the ROI (the ROI's blocks as 0, as the official range)."""
        e = np.where(self.roi_blocks, 0.0, self.effect)
        return float(e.min()), float(e.max())

    def summary(self) -> dict[str, Any]:
        """Everything but the arrays, as plain JSON-ready values."""
        lo, hi = self.effect_range
        return {"roi": list(self.roi), "scale": self.scale, "block": self.block, "psnr": self.psnr,
                "counts": self.counts, "official_counts": list(self.official_counts()),
                "effect_range": [lo, hi], "effect_span": hi - lo, "forwards": self.forwards,
                "official_forwards": self.official_forwards, "box": list(self.box) if self.box else None,
                "path": self.path, "patches": self.patches, "resize": self.resize, "params": self.params,
                "timings": self.timings}


__all__ = ["CEMResult"]
