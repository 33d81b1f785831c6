"""The requests front ends make of the library, parsed and prepared once.

- :class:`lamfast.models.ModelSpec` (here too): a model as one string
  (``bundled``, ``PATH``, ``ARCH:PATH``, ``FILE.py:Class:PATH``), with its
  content hash and the notes of how it was read; :func:`lamfast.load_model`
  builds it.
- :func:`prepare_input` -> :class:`SRInput`: an image file made into the HR
  image, the LR input and the model's scale, by one rule.
- :func:`prepare_clip` -> :class:`SRClip`: a folder or glob of frames made
  into a video model's clip by the same rule, frame by frame.

The CLI commands, the dataset worker, ``erf``, ``attention`` and the report
go through these; the engines they then call are public
(:func:`lamfast.lam_windows`, :func:`lamfast.erf`, ...).
"""
from lamfast.models.spec import ModelSpec, model_labels
from lamfast.request.sr_clip import SRClip, frame_files, prepare_clip
from lamfast.request.sr_input import SCALE_PROBE, SRInput, choose_color, find_scale, prepare_input

__all__ = ["SCALE_PROBE", "ModelSpec", "model_labels", "SRClip", "SRInput", "choose_color", "find_scale", "frame_files",
           "prepare_clip", "prepare_input"]
