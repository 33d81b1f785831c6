"""The parameters that define a LAM result, validated once."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Union

from lamfast.errors import LAMError

MODES = ("compat", "robust", "official")
# LAM_Demo's paths (BackProp.py): GaussianBlurPath, LinearPath, GaussianLinearPath.
PATHS = ("blur", "linear", "gaussian_linear")
# LAM_Demo's IG baselines (utils.IG_baseline) for the straight-line path; "zero" is LinearPath's.
BASELINES = ("zero", "gaus", "bif", "mean")
# LAM_Demo's objectives: attr_grad (gradient magnitude) and attr_id (the pixel values), or the user's own.
OBJECTIVES = ("grad", "id")
REDUCES = ("sum", "mean")


def int_at_least(name: str, value: Any, low: int) -> int:
    """``value`` when it is an integer >= ``low``; LAMError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise LAMError(f"{name} must be an integer >= {low}, got {value!r}", param=name)
    return value


@dataclass(frozen=True, kw_only=True)
class LAMParams:
    """What defines a LAM result: the path and the objective (keyword-only).

    How a result is computed (path points per pass, crops, the device,
    a progress bar) is not here: those are the run keywords of
    :func:`lamfast.lam` and :func:`lamfast.lam_windows`, which never change
    the numbers.

    Example:
        >>> from lamfast import LAMParams
        >>> p = LAMParams(fold=20, mode="robust")
        >>> p.fold, p.sigma, p.l
        (20, 1.2, 9)
        >>> p.defining()
        {'fold': 20, 'sigma': 1.2, 'l': 9, 'mode': 'robust'}

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
        path: ``"blur"`` (LAM's Gaussian-blur path, the official
            ``GaussianBlurPath``), ``"linear"`` (the straight line from a
            baseline, ``LinearPath``; with ``baseline`` other than
            ``"zero"`` this is the official IG), ``"gaussian_linear"``
            (the straight line from the image blurred once with ``sigma``
            and ``l``, ``GaussianLinearPath``). The straight-line paths have
            ``fold`` points ``b + a (x - b)``, ``a = linspace(0, 1, fold)``,
            and the constant derivative ``x - b``; ``sigma`` and ``l`` only
            shape ``gaussian_linear``'s baseline.
        baseline: the start of ``path="linear"``: ``"zero"`` (LinearPath) or
            the official IG baselines, computed on the image in [0, 255]
            with OpenCV: ``"gaus"`` (GaussianBlur 7x7, sigma from the size),
            ``"bif"`` (bilateralFilter 15, 90, 90), ``"mean"`` (medianBlur
            5, named so officially).
        objective: ``"grad"`` (``attr_grad``: the window's gradient
            magnitude), ``"id"`` (``attr_id``: the window's output values),
            or a function of the output window [N,C,d,d] returning one value
            per path point [N]. It must not mix path points.
        reduce: ``"sum"`` or ``"mean"`` over the window's entries (channels
            included), as the official ``reduce_func``; a function objective
            reduces by itself.
    Raises:
        LAMError: on construction, for any value LAM refuses (``param``
            names the field).
    """

    fold: int = 50
    sigma: float = 1.2
    l: int = 9
    mode: str = "compat"
    path: str = "blur"
    objective: Union[str, Callable] = "grad"
    reduce: str = "sum"
    baseline: str = "zero"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise LAMError(f"mode must be one of {MODES}, got {self.mode!r}", param="mode")
        int_at_least("fold", self.fold, 1)
        if isinstance(self.l, bool) or not isinstance(self.l, int) or self.l < 1 or self.l % 2 == 0:
            raise LAMError(f"l must be an odd integer >= 1, got {self.l!r}", param="l")
        s = self.sigma
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s < 0:
            raise LAMError(f"sigma must be a finite number > 0, got {s!r}", param="sigma")
        if s == 0:
            raise LAMError("sigma must be > 0: with sigma 0 every point of the blur path is the image itself, so "
                           "every attribution is zero, whatever the window", param="sigma")
        object.__setattr__(self, "sigma", float(s))
        for name, value, allowed in (("path", self.path, PATHS), ("reduce", self.reduce, REDUCES),
                                     ("baseline", self.baseline, BASELINES)):
            if value not in allowed:
                raise LAMError(f"{name} must be one of {allowed}, got {value!r}", param=name)
        if not callable(self.objective) and self.objective not in OBJECTIVES:
            raise LAMError(f"objective must be one of {OBJECTIVES} or a function of the output window, "
                           f"got {self.objective!r}", param="objective")
        if callable(self.objective) and self.reduce != "sum":
            raise LAMError("reduce applies to the built-in objectives; a function objective reduces its window "
                           "itself", param="reduce")
        if self.baseline != "zero" and self.path != "linear":
            raise LAMError(f"baseline={self.baseline!r} is the start of path='linear' (the official IG); "
                           f"path={self.path!r} has its own", param="baseline")

    @property
    def gradient_objective(self) -> bool:
        """Whether the objective is ``attr_grad``, whose sqrt makes the compat NaN steps."""
        return self.objective == "grad"

    @property
    def tracks_ties(self) -> bool:
        """Whether exact output ties change the result (compat/official ``attr_grad``)."""
        return self.gradient_objective and self.mode != "robust"

    @property
    def halves(self) -> bool:
        """Whether the fold/2 sum is a sub-sum of this path (LAM's blur path, even ``fold``): its points
        σ(1 - 2i/fold) are every second point of this one. A straight line's points ``linspace(0, 1,
        fold)`` are not, for any fold."""
        return self.path == "blur" and self.fold % 2 == 0

    def objective_name(self) -> str:
        """The objective as text: its name, or ``module.qualname`` of a function."""
        if callable(self.objective):
            fn = self.objective
            return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
        return self.objective

    def defining(self) -> dict[str, Any]:
        """Every field as JSON-ready values, for records and store keys.

        The path and objective choices appear only where they differ from
        LAM's own, so a record of plain LAM reads as the official
        parameters (fold, sigma, l) and the mode.
        """
        out: dict[str, Any] = {"fold": self.fold, "sigma": self.sigma, "l": self.l, "mode": self.mode}
        for name, value, default in (("path", self.path, "blur"), ("baseline", self.baseline, "zero"),
                                     ("objective", self.objective_name(), "grad"), ("reduce", self.reduce, "sum")):
            if value != default:
                out[name] = value
        return out


# The fields of LAMParams, which lam() and lam_windows() also take one by one.
FIELDS = ("fold", "sigma", "l", "mode", "path", "objective", "reduce", "baseline")


def resolve_params(params: LAMParams | None, **given: Any) -> LAMParams:
    """The LAMParams of a call: ``params``, or the fields given one by one (None: not given).

    Raises:
        LAMError: ``params`` is not a LAMParams, or it and single fields are both given.
    """
    named = {k: v for k, v in given.items() if v is not None}
    if params is None:
        return LAMParams(**named)
    if not isinstance(params, LAMParams):
        raise LAMError(f"params must be a LAMParams, got {type(params).__name__}", param="params")
    if named:
        raise LAMError(f"give the path parameters either as params or one by one ({', '.join(sorted(named))}), "
                       "not both", param="params")
    return params
