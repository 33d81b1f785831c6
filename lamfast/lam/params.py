"""The parameters that define a LAM result, validated once."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lamfast.lam.errors import LAMError

MODES = ("compat", "robust", "official")


def _int_at_least(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise LAMError(f"{name} must be an integer >= {low}, got {value!r}", param=name)
    return value


@dataclass(frozen=True)
class LAMParams:
    """The blur path and objective of one LAM computation.

    Attributes:
        fold: path steps (the official ``fold``), >= 1.
        sigma: blur at the start of the path, finite, > 0 (at 0 every path
            point is the image itself and every attribution is zero).
        l: odd Gaussian kernel side, >= 1.
        mode: ``"compat"`` reproduces the official numbers, NaN steps
            included; ``"official"`` is compat on the official code's own
            OpenCV float32 path (bit-identical paths, so the NaN steps match
            exactly; needs OpenCV); ``"robust"`` gives sqrt a zero
            subgradient at 0.
        batch_size: path points per forward/backward; None picks it from
            free memory. It changes speed, never the result.
    Raises:
        LAMError: on construction, for any value LAM refuses (``param``
            names the field).
    """

    fold: int = 50
    sigma: float = 1.2
    l: int = 9
    mode: str = "compat"
    batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise LAMError(f"mode must be one of {MODES}, got {self.mode!r}", param="mode")
        _int_at_least("fold", self.fold, 1)
        if isinstance(self.l, bool) or not isinstance(self.l, int) or self.l < 1 or self.l % 2 == 0:
            raise LAMError(f"l must be an odd integer >= 1, got {self.l!r}", param="l")
        s = self.sigma
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s < 0:
            raise LAMError(f"sigma must be a finite number > 0, got {s!r}", param="sigma")
        if s == 0:
            raise LAMError("sigma must be > 0: with sigma 0 every point of the blur path is the image itself, so "
                           "every attribution is zero, whatever the window", param="sigma")
        object.__setattr__(self, "sigma", float(s))
        if self.batch_size is not None:
            _int_at_least("batch_size", self.batch_size, 1)

    def defining(self) -> dict[str, Any]:
        """The fields that change the numbers (all but ``batch_size``)."""
        return {"fold": self.fold, "sigma": self.sigma, "l": self.l, "mode": self.mode}
