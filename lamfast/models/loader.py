"""Loading a model for lamfast: :func:`load_model` -> :class:`lamfast.ModelDescriptor`.

A checkpoint is read weights-only by default, its wrappers undone, and its
architecture found: the one named, else the registered architecture whose
``detect`` accepts its keys, else spandrel's. Every guess is a note, and
each can be overridden (``ARCH:PATH``, model keyword arguments,
``rgb_range``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from lamfast.bundled import bundled_file
from lamfast.descriptor import ModelDescriptor, SizeRequirements, describe
from lamfast.errors import LAMError, LamfastError
from lamfast.models.checkpoint import CheckpointError, fit_state_dict, read_checkpoint
from lamfast.models.custom import ArchSpecError, build_custom, is_arch_spec
from lamfast.models.registry import ArchitectureGuessError, detected_architectures, get_architecture
from lamfast.models.spandrel_support import detect_with_spandrel
from lamfast.models.spec import ModelSpec
from lamfast.models.tinysr import TinySR
from lamfast.models.tinyvsr import TinyVSR


class RangeAdapter(nn.Module):
    """Runs a model that expects inputs in [0, rgb_range] on [0,1] images.

    Shapes: [B,C,H,W] in [0,1] -> model(x * rgb_range) / rgb_range.

    Example:
        >>> import torch
        >>> from lamfast.models import RangeAdapter
        >>> RangeAdapter(torch.nn.Identity(), 255)(torch.full((1, 3, 2, 2), 0.5)).max()
        tensor(0.5000)
    """

    def __init__(self, model: nn.Module, rgb_range: float):
        super().__init__()
        self.model = model
        self.rgb_range = float(rgb_range)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x * self.rgb_range) / self.rgb_range


def _described(model: nn.Module, arch: str, source: str, notes: list[str]) -> ModelDescriptor:
    """A built model's descriptor: its own ``scale``, ``in_channels`` and ``out_channels`` where it has them
    (lamfast's architectures do), else measured with one forward of an image; a model that takes no
    image (a video model) is left unmeasured, and measured where it is used."""
    known = [getattr(model, a, None) for a in ("scale", "in_channels", "out_channels")]
    if all(isinstance(v, int) for v in known):
        return ModelDescriptor(model, *known, SizeRequirements(), arch, source, notes)
    try:
        measured = describe(model.eval(), arch=arch)
    except LAMError:  # no SR image from an image (a video model, or a broken one): measured where it is used
        return ModelDescriptor(model, None, None, None, SizeRequirements(), arch, source, notes)
    return ModelDescriptor(model, measured.scale, measured.in_channels, measured.out_channels, SizeRequirements(),
                           arch, source, notes + measured.notes)


def _bundled(kind: str, cls) -> ModelDescriptor:
    path = bundled_file(kind)
    sd = torch.load(str(path), map_location="cpu", weights_only=True)
    model = cls.from_state_dict(sd)
    fit_state_dict(model, sd, cls.__name__.lower())
    return _described(model.eval(), cls.__name__.lower(), f"bundled:{path.name}", [])


def bundled_model() -> ModelDescriptor:
    """The bundled x4 TinySR, trained by ``scripts/train_tiny_sr.py``.

    Example:
        >>> from lamfast.models import bundled_model
        >>> d = bundled_model()
        >>> d.arch, d.scale
        ('tinysr', 4)
    """
    return _bundled("sr_model", TinySR)


def bundled_video_model() -> ModelDescriptor:
    """The bundled x2 TinyVSR (5 frames in, the centre one out), trained by ``scripts/train_tiny_vsr.py``.

    Example:
        >>> from lamfast.models import bundled_video_model
        >>> d = bundled_video_model()
        >>> d.arch, d.scale, d.model.frames
        ('tinyvsr', 2, 5)
    """
    return _bundled("video_model", TinyVSR)


def _build(sd, arch: str | None, kwargs: dict, source: str, notes: list[str]) -> ModelDescriptor:
    if arch is not None and is_arch_spec(arch):
        model, name, more = build_custom(arch, kwargs)
        fit_state_dict(model, sd, name)
        return _described(model, name, source, notes + more)
    if arch is None:
        found = detected_architectures(sd)
        if len(found) > 1:
            raise CheckpointError(f"the checkpoint has the layout of several registered architectures ({', '.join(found)}); "
                                  "name one as ARCH:PATH", param="arch")
        if not found:
            if kwargs:
                raise CheckpointError("model keyword arguments need a named architecture (registered, FILE.py:Class "
                                      "or module:Class)", param="model_kwargs")
            described = detect_with_spandrel(sd)
            described.source, described.notes = source, notes + described.notes
            return described
        arch = found[0]
        notes = notes + [f"detected architecture {arch!r} from the checkpoint's keys"]
    try:
        spec = get_architecture(arch)
    except KeyError as exc:
        raise CheckpointError(f"{exc.args[0]}; or name a class as FILE.py:Class or module:Class", param="arch") from None
    try:
        model, more = spec.build(sd, kwargs)
    except (ArchitectureGuessError, LamfastError):
        raise
    except (KeyError, IndexError, ValueError) as exc:
        # Detected: a real failure of the architecture's sizing code. Named: a checkpoint of another layout.
        why = "its sizing code failed" if spec.detect is not None and spec.detect(sd) else "cannot size it"
        raise CheckpointError(f"checkpoint does not fit architecture {spec.name!r}: {why} "
                              f"({type(exc).__name__}: {exc})", param="arch") from None
    fit_state_dict(model, sd, spec.name)
    return _described(model, spec.name, source, notes + more)


def load_model(
    model: "str | Path | ModelSpec | None" = None,
    *,
    arch: str | None = None,
    model_kwargs: dict | None = None,
    unsafe_pickle: bool = False,
    rgb_range: float | None = None,
    device: Any = "cpu",
) -> ModelDescriptor:
    """Load an SR model for lamfast, described.

    Args:
        model: ``"bundled"`` or None (the bundled x4 TinySR), a checkpoint (.pt/.pth/.ckpt or
            .safetensors), or ``ARCH:PATH`` naming its architecture (a :class:`ModelSpec`'s text).
        arch: the architecture, named apart from the checkpoint: a registered name, or a class as
            ``"path/to/file.py:ClassName"`` / ``"package.module:ClassName"`` (importing the file
            runs its code). None: detect (lamfast's registered architectures, then spandrel).
        model_kwargs: keyword arguments for the architecture; for a registered one they override
            what is read from the checkpoint.
        unsafe_pickle: allow full-pickle checkpoints (runs code from the file).
        rgb_range: the value range the model expects (255 for EDSR/RCAN-style models); None uses
            the architecture's own hint, else 1.
        device: where to put the model (it is lamfast's own until returned).
    Returns:
        ModelDescriptor: the module (inputs and outputs in [0,1]) with its scale, channels, size
        requirements and the loader's notes.
    Raises:
        CheckpointError / DetectionError / ArchSpecError / ArchitectureGuessError (LamfastErrors)
        with one-line messages.

    Example:
        >>> import lamfast
        >>> d = lamfast.load_model("bundled")
        >>> d.arch, d.scale, d.source
        ('tinysr', 4, 'bundled:tinysr_x4.pt')
    """
    spec = ModelSpec.parse(model if model is not None else "bundled").with_arch(arch)
    if spec.bundled:
        if model_kwargs:
            raise CheckpointError("the bundled model takes no model keyword arguments", param="model_kwargs")
        loaded = bundled_model()
    else:
        obj, notes = read_checkpoint(spec.path, unsafe_pickle=unsafe_pickle)
        notes = list(spec.notes) + notes
        if isinstance(obj, nn.Module):
            loaded = _described(obj, type(obj).__name__, str(spec.path), notes)
        else:
            loaded = _build(obj, spec.arch, dict(model_kwargs or {}), str(spec.path), notes)
    hint = getattr(loaded.model, "input_range", None)
    if rgb_range is None and hint not in (None, 1, 1.0):
        rgb_range = float(hint)
        loaded.notes.append(f"{loaded.arch} expects inputs in [0, {hint:g}]: using rgb_range {hint:g} "
                            "(give rgb_range to override)")
    if rgb_range not in (None, 1, 1.0):
        loaded.model = RangeAdapter(loaded.model, rgb_range)
    loaded.model = loaded.model.to(device).eval()
    return loaded


__all__ = ["ArchSpecError", "RangeAdapter", "bundled_model", "bundled_video_model", "load_model"]
