"""CEM: causal effect maps (Hu, Gu, ..., Dong, TPAMI 2025) on lamfast's engine.

:func:`cem` answers which input blocks help an output ROI and which hurt it, with a sign, by
intervention: each block is replaced by patches of a bank and the ROI's PSNR against the ground
truth is measured. The official algorithm exactly (:mod:`lamfast.cem.engine`), batched, on crops,
and without forwards for blocks beyond the model's reach.

- patch banks: :mod:`lamfast.cem.patches` (:class:`PatchBank`, :func:`default_bank`);
- what an intervention writes, per task: :mod:`lamfast.cem.interventions`;
- the result: :class:`CEMResult` (:mod:`lamfast.cem.result`); its figure: :mod:`lamfast.cem.figure`.

The package is also the function: ``lamfast.cem(model, lr, hr, h, w, roi_size)`` calls
:func:`lamfast.cem.engine.cem`, while ``lamfast.cem.patches`` and ``import lamfast.cem.patches``
still reach the modules.
"""
import inspect as _inspect
import sys as _sys
import types as _types

from lamfast.cem.engine import cem
from lamfast.cem.patches import PatchBank, default_bank
from lamfast.cem.result import CEMResult


class _CallableModule(_types.ModuleType):
    """The ``lamfast.cem`` package, callable as :func:`lamfast.cem.engine.cem`."""

    __call__ = staticmethod(cem)


_sys.modules[__name__].__class__ = _CallableModule
__signature__ = _inspect.signature(cem)

__all__ = ["CEMResult", "PatchBank", "cem", "default_bank"]
