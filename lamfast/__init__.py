"""lamfast: fast, exact attribution for PyTorch image models.

- LAM for super-resolution, images and clips: :func:`lam` and
  :func:`lam_windows`, with :class:`LAMParams` and :class:`LAMResult`
  (package :mod:`lamfast.lam`: engine, objective, windows, receptive-field
  crops); DI maps over an image: :func:`di_map`; metrics :func:`gini` /
  :func:`diffusion_index` (:mod:`lamfast.metrics`), figures in
  :mod:`lamfast.viz`; models and checkpoints: :func:`load_model`, which
  returns a :class:`ModelDescriptor` (:mod:`lamfast.models`); effective
  receptive fields: :func:`erf` (:mod:`lamfast.erf`); which filters a
  fine-tuning changed for a degradation: :func:`faig`
  (:mod:`lamfast.filter_attribution`); which input blocks help or hurt an
  output ROI, with a sign: :func:`cem` (causal effect maps, :mod:`lamfast.cem`). Whole datasets:
  :mod:`lamfast.dataset`, imported only when used.
- The path engine shared by LAM, IG and BlurIG: :mod:`lamfast.path`.
- Classifiers: :mod:`lamfast.cam` (Grad-CAM family), :mod:`lamfast.attr`
  (gradient and path methods), :mod:`lamfast.attention` (ViT attention),
  :mod:`lamfast.faithfulness` (deletion / insertion AUC).
- Ops (C++ kernels with pure-torch twins), see :mod:`lamfast.ops`:
  :func:`blur_path`, :func:`path_accumulate`, :func:`kde_map`, :func:`lam_objective`.
"""
from lamfast._ext import ext_available, ext_status
from lamfast._version import __version__
from lamfast.descriptor import ModelDescriptor
from lamfast import cem  # the package, callable as cem(model, lr, hr, h, w, roi_size): see lamfast.cem
from lamfast.cem import CEMResult
from lamfast.erf import erf
from lamfast.filter_attribution import FAIGResult, faig
from lamfast import lam  # the package, callable as lam(model, image, h, w): see lamfast.lam
from lamfast.lam import DIMap, LAMError, LAMNaNWarning, LAMParams, LAMResult, VideoLAMResult, di_map, lam_windows
from lamfast.metrics import diffusion_index, gini
from lamfast.models import load_model, register_model
from lamfast.ops import blur_path, kde_map, lam_objective, path_accumulate

__all__ = [
    "CEMResult",
    "DIMap",
    "FAIGResult",
    "LAMError",
    "LAMNaNWarning",
    "LAMParams",
    "LAMResult",
    "ModelDescriptor",
    "VideoLAMResult",
    "__version__",
    "blur_path",
    "cem",
    "di_map",
    "diffusion_index",
    "erf",
    "ext_available",
    "ext_status",
    "faig",
    "gini",
    "kde_map",
    "lam_objective",
    "lam",
    "lam_windows",
    "load_model",
    "path_accumulate",
    "register_model",
]
