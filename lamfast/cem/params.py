"""What defines a CEM result besides the model, the image and the ROI: :class:`CEMParams`, as the dataset
runner stores and hashes it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from lamfast.errors import LamfastError


@dataclass(frozen=True)
class CEMParams:
    """The keywords of :func:`lamfast.cem` that define its numbers (task ``"sr"``).

    Attributes:
        block_size: block side in output pixels; patches: ``"bundled"`` or a folder of patch images;
        coarse, fine: interventions per block per stage; tol: dB threshold; seed: the draws' seed.

    Example:
        >>> from lamfast.cem.params import CEMParams
        >>> p = CEMParams(fine=20)
        >>> p.kwargs()["fine"], sorted(p.defining())
        (20, ['block_size', 'coarse', 'fine', 'patches', 'seed', 'tol'])
    """

    block_size: int = 8
    patches: str = "bundled"
    coarse: int = 3
    fine: int = 50
    tol: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("block_size", 1), ("coarse", 1), ("fine", 0), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise LamfastError(f"{name} must be an integer >= {low}, got {value!r}", param=name)
        if isinstance(self.tol, bool) or not isinstance(self.tol, (int, float)) or not self.tol >= 0:
            raise LamfastError(f"tol must be a number >= 0 (dB), got {self.tol!r}", param="tol")
        if not isinstance(self.patches, str):
            raise LamfastError(f"patches must be 'bundled' or a folder, got {type(self.patches).__name__}",
                               param="patches")

    def kwargs(self) -> dict[str, Any]:
        """The keywords of :func:`lamfast.cem`."""
        return {"block_size": self.block_size, "patches": self.patches, "coarse": self.coarse, "fine": self.fine,
                "tol": float(self.tol), "seed": self.seed}

    def defining(self) -> dict[str, Any]:
        """JSON-ready values for a result's key: the bank by its content (a folder moved keeps its results,
        one whose files changed does not)."""
        from lamfast.cem.patches import PatchBank

        bank = PatchBank.of(self.patches)
        digest = hashlib.sha256(bank.patches.tobytes() + str(bank.patches.shape).encode()).hexdigest()[:16]
        return {**self.kwargs(), "patches": digest}


__all__ = ["CEMParams"]
