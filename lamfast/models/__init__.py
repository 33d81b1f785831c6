"""Models: an architecture registry, safe checkpoint loading, model specs and the bundled models.

:func:`load_model` reads a checkpoint (weights only by default), undoes
common wrappers, and builds the architecture: the one named, a registered
one whose ``detect`` accepts the checkpoint's keys
(``@lamfast.register_model``; lamfast ships ``tinysr``, ``tinyvsr``,
``edsr`` and LAM_Demo's zoo architectures ``carn``, ``san`` and ``rnan``),
or one spandrel detects (RCAN, RRDBNet, SwinIR, HAT, ...). It returns a
:class:`lamfast.ModelDescriptor`. :class:`ModelSpec` reads a model named by
one string (``[NAME=]bundled | PATH | ARCH:PATH``).
"""
from lamfast.bundled import data_path
from lamfast.descriptor import ModelDescriptor
from lamfast.models.carn import CARN
from lamfast.models.checkpoint import CheckpointError, fit_state_dict, read_checkpoint
from lamfast.models.custom import ArchSpecError
from lamfast.models.edsr import EDSR
from lamfast.models.loader import RangeAdapter, bundled_model, bundled_video_model, load_model
from lamfast.models.registry import (ArchitectureGuessError, detected_architectures, get_architecture,
                                     list_architectures, register_model)
from lamfast.models.rnan import RNAN
from lamfast.models.san import SAN
from lamfast.models.spandrel_support import DetectionError
from lamfast.models.spec import ModelSpec, model_labels
from lamfast.models.tinysr import TinySR
from lamfast.models.tinyvsr import TinyVSR

__all__ = [
    "ArchSpecError",
    "ArchitectureGuessError",
    "CARN",
    "CheckpointError",
    "DetectionError",
    "EDSR",
    "ModelDescriptor",
    "ModelSpec",
    "RNAN",
    "RangeAdapter",
    "SAN",
    "TinySR",
    "TinyVSR",
    "bundled_model",
    "bundled_video_model",
    "data_path",
    "detected_architectures",
    "fit_state_dict",
    "get_architecture",
    "list_architectures",
    "load_model",
    "model_labels",
    "read_checkpoint",
    "register_model",
]
