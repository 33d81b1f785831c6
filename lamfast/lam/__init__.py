"""LAM (Local Attribution Maps) for super-resolution networks.

- :func:`lam`, :func:`lam_windows`: the engine (:mod:`lamfast.lam.engine`).
- :class:`LAMParams`: the path parameters (:mod:`lamfast.lam.params`).
- :class:`LAMResult`: maps, Gini, DI, which path ran (:mod:`lamfast.lam.result`).
- The objective: :mod:`lamfast.lam.objective`; windows and window specs:
  :mod:`lamfast.lam.windows`.
- Receptive-field crops: :mod:`lamfast.lam.crop`, with the radius measured
  by :mod:`lamfast.lam.reach`.
- SR model checks and the scale: :mod:`lamfast.lam.srmodel`.
"""
from lamfast.lam.crop import CropInfo
from lamfast.lam.engine import lam, lam_windows
from lamfast.lam.errors import LAMError, LAMNaNWarning
from lamfast.lam.params import LAMParams
from lamfast.lam.reach import Reach, influence_radius
from lamfast.lam.result import LAMResult
from lamfast.lam.srmodel import infer_scale

__all__ = ["CropInfo", "LAMError", "LAMNaNWarning", "LAMParams", "LAMResult", "Reach", "infer_scale",
           "influence_radius", "lam", "lam_windows"]
