"""A parameter set in words, for captions and page headings: what a reader of a paper needs, in the order
a methods section gives it, and nothing at its default that a reader would not ask about."""
from __future__ import annotations

from typing import Any

from lamfast.lam.params import LAMParams
from lamfast.lam.windows import parse_windows

_DEFAULTS = LAMParams()


def params_in_words(params: dict[str, Any]) -> str:
    """A stored parameter set (:meth:`lamfast.dataset.RunConfig.params`) as one phrase.

    Example:
        >>> from lamfast.dataset import RunConfig
        >>> from lamfast.dataset.words import params_in_words
        >>> from lamfast.lam import LAMParams
        >>> params_in_words(RunConfig(windows="top:8:16", lam=LAMParams(fold=50)).params())
        'fold 50, sigma 1.2, kernel 9; windows: the 8 strongest-edge windows of 16 px, at least 16 px apart, chosen on the HR image'
    """
    fold, sigma, l = (params.get(k, getattr(_DEFAULTS, k)) for k in ("fold", "sigma", "l"))
    parts = [f"fold {fold}, sigma {sigma:g}, kernel {l}"]
    extra = []
    if params.get("mode", "compat") != "compat":
        extra.append(f"{params['mode']} mode")
    if params.get("path", _DEFAULTS.path) != _DEFAULTS.path:
        extra.append(f"{params['path'].replace('_', '-')} path")
    if params.get("baseline", "zero") != "zero":
        extra.append(f"{params['baseline']} baseline")
    if params.get("objective", _DEFAULTS.objective) != _DEFAULTS.objective:
        extra.append(f"objective {params['objective']}")
    if params.get("reduce", _DEFAULTS.reduce) != _DEFAULTS.reduce:
        extra.append(f"{params['reduce']} over the window")
    text = ", ".join(parts + extra)
    try:
        windows = parse_windows(params["windows"]).words
    except (KeyError, ValueError):
        windows = str(params.get("windows", "?"))
    source = params.get("windows_from")
    if source == "hr":
        windows += ", chosen on the HR image"
    elif source:
        windows += f", chosen on {source}'s output"
    text += f"; windows: {windows}"
    more = []
    if params.get("lr_input"):
        more.append("LR inputs as given")
    if params.get("rgb_range") is not None:
        more.append(f"rgb range {params['rgb_range']:g}")
    if params.get("color"):
        more.append(f"{params['color']} input")
    if params.get("video"):
        frame = params.get("frame")
        more.append("clips, " + ("the middle output frame" if frame is None else f"output frame {frame}"))
    if params.get("model_kwargs"):
        more.append("model arguments " + ", ".join(f"{k}={v}" for k, v in sorted(params["model_kwargs"].items())))
    return text + ("; " + "; ".join(more) if more else "")


__all__ = ["params_in_words"]
