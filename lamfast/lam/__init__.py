"""LAM (Local Attribution Maps) for super-resolution networks.

- :func:`lam`, :func:`lam_windows`: the engine (:mod:`lamfast.lam.engine`), for an image
  [C,H,W] or a clip [T,C,H,W] through a video model (:mod:`lamfast.lam.srmodel`).
- :class:`LAMParams`: what defines a result (:mod:`lamfast.lam.params`).
- :class:`LAMResult` (:class:`VideoLAMResult` for a clip): maps, Gini, DI, which path ran
  (:mod:`lamfast.lam.result`).
- :func:`di_map`: the DI of every window of a grid (:mod:`lamfast.lam.dimap`).
- The paths (LAM's blur path, LAM_Demo's straight lines and IG baselines):
  :mod:`lamfast.lam.paths`; the objectives (``attr_grad``, ``attr_id``, a
  function of the window; sum or mean): :mod:`lamfast.lam.objective`;
  windows and window specs: :mod:`lamfast.lam.windows`.
- Receptive-field crops: :mod:`lamfast.lam.crop`, with the radius measured
  by :mod:`lamfast.lam.reach`.
- How the engine calls the model, and the scale: :mod:`lamfast.lam.srmodel`.

The package is also the function: ``lamfast.lam(model, image, h, w)`` calls
:func:`lamfast.lam.engine.lam`, while ``lamfast.lam.windows`` and ``import
lamfast.lam.windows`` still reach the subpackage's modules.
"""
import inspect as _inspect
import sys as _sys
import types as _types

from lamfast.errors import LAMError, LAMNaNWarning
from lamfast.lam.crop import CropInfo
from lamfast.lam.dimap import DIMap, di_map
from lamfast.lam.engine import RunOptions, lam, lam_windows
from lamfast.lam.params import LAMParams
from lamfast.lam.reach import Reach, influence_radius
from lamfast.lam.result import LAMResult, VideoLAMResult
from lamfast.lam.srmodel import infer_scale



class _CallableModule(_types.ModuleType):
    """The ``lamfast.lam`` package, callable as :func:`lamfast.lam.engine.lam`."""

    # A static method, so the call adds no frame: warnings still point at the caller's line.
    __call__ = staticmethod(lam)


_sys.modules[__name__].__class__ = _CallableModule
__signature__ = _inspect.signature(lam)  # what inspect and IDEs show for lamfast.lam(...)

__all__ = ["CropInfo", "DIMap", "LAMError", "LAMNaNWarning", "LAMParams", "LAMResult", "Reach", "RunOptions",
           "VideoLAMResult",
           "di_map", "infer_scale", "influence_radius", "lam", "lam_windows"]
