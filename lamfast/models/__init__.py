"""Models: an architecture registry, safe checkpoint loading and the bundled SR model.

``load_model(modelpath, arch=...)`` reads a checkpoint (weights only by
default), undoes common wrappers, and builds the architecture: a
registered one (``@lamfast.register_model``; lamfast ships ``tinysr``,
``edsr`` and LAM_Demo's zoo architectures ``carn``, ``san`` and ``rnan``), or
one detected by spandrel (RCAN, RRDBNet, SwinIR, HAT, ...).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from lamfast.models.checkpoint import CheckpointError, fit_state_dict, read_checkpoint
from lamfast.models.carn import CARN
from lamfast.models.edsr import EDSR
from lamfast.models.rnan import RNAN
from lamfast.models.san import SAN
from lamfast.models.custom import ArchSpecError, build_custom, is_arch_spec
from lamfast.models.registry import ArchitectureGuessError, get_architecture, list_architectures, register_model
from lamfast.models.spandrel_support import DetectionError, detect_with_spandrel
from lamfast.models.tinysr import TinySR
from lamfast.models.tinyvsr import TinyVSR

BUNDLED_WEIGHTS = "tinysr_x4.pt"
# The bundled video model (scripts/train_tiny_vsr.py): a checkpoint the registry detects like any other.
BUNDLED_VIDEO_WEIGHTS = "tinyvsr_x2.pt"


class RangeAdapter(nn.Module):
    """Runs a model that expects inputs in [0, rgb_range] on [0,1] images.

    Shapes: [B,3,H,W] in [0,1] -> model(x * rgb_range) / rgb_range.
    """

    def __init__(self, model: nn.Module, rgb_range: float):
        super().__init__()
        self.model = model
        self.rgb_range = float(rgb_range)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x * self.rgb_range) / self.rgb_range


@dataclass
class LoadedModel:
    """A model ready for lamfast (inputs and outputs in [0,1]) and how it was made."""

    model: nn.Module
    arch: str
    source: str
    notes: list[str] = field(default_factory=list)


def data_path(name: str) -> Path:
    """Path of a file shipped in ``lamfast/data``."""
    return Path(str(resources.files("lamfast") / "data" / name))


def _bundled(weights: str, cls, arch: str) -> LoadedModel:
    sd = torch.load(str(data_path(weights)), map_location="cpu", weights_only=True)
    model = cls.from_state_dict(sd)
    fit_state_dict(model, sd, arch)
    return LoadedModel(model.eval(), arch, f"bundled:{weights}")


def bundled_model() -> LoadedModel:
    """The bundled x4 TinySR, trained by ``scripts/train_tiny_sr.py``."""
    return _bundled(BUNDLED_WEIGHTS, TinySR, "tinysr")


def bundled_video_model() -> LoadedModel:
    """The bundled x2 TinyVSR (5 frames in, the centre one out), trained by ``scripts/train_tiny_vsr.py``."""
    return _bundled(BUNDLED_VIDEO_WEIGHTS, TinyVSR, "tinyvsr")


def _build(sd, arch: str | None, arch_kwargs: dict) -> tuple[nn.Module, str, list[str]]:
    if arch is not None and is_arch_spec(arch):
        model, name, notes = build_custom(arch, arch_kwargs)
        fit_state_dict(model, sd, name)
        return model, name, notes
    if arch is not None:
        try:
            spec = get_architecture(arch)
        except KeyError as exc:
            raise CheckpointError(f"{exc.args[0]}; or name a class as FILE.py:Class or module:Class") from None
        try:
            model, notes = spec.build(sd, arch_kwargs)
        except ArchitectureGuessError:
            raise
        except (KeyError, IndexError, ValueError) as exc:
            raise CheckpointError(f"checkpoint does not fit architecture {arch!r}: cannot size it ({exc})") from None
        fit_state_dict(model, sd, spec.name)
        return model, spec.name, notes
    for name in list_architectures():
        try:
            model, notes = get_architecture(name).build(sd, arch_kwargs)
            fit_state_dict(model, sd, name)
            return model, name, [f"detected architecture {name!r} from the checkpoint's keys", *notes]
        except ArchitectureGuessError:
            raise  # the layout matched, the settings cannot be read: say so, never fall through
        except (KeyError, IndexError, ValueError, RuntimeError):
            continue
    if arch_kwargs:
        raise CheckpointError("architecture keyword arguments need a named architecture (registered, FILE.py:Class "
                              "or module:Class)")
    return detect_with_spandrel(sd)


def load_model(
    modelpath: str | Path | None = None,
    *,
    arch: str | None = None,
    unsafe_pickle: bool = False,
    rgb_range: float | None = None,
    device: str | torch.device = "cpu",
    arch_kwargs: dict | None = None,
) -> LoadedModel:
    """Load an SR model for lamfast.

    Args:
        modelpath: checkpoint (.pt/.pth/.ckpt or .safetensors); None or
            ``"bundled"`` for the bundled model.
        arch: registered architecture name, or a class as
            ``"path/to/file.py:ClassName"`` / ``"package.module:ClassName"``
            (importing the file runs its code); None to detect (lamfast's
            registry first, then spandrel).
        unsafe_pickle: allow full-pickle checkpoints (runs code from the file).
        rgb_range: the value range the model expects (255 for EDSR/RCAN-style
            models); None uses the architecture's own hint, else 1.
        device: where to put the model.
        arch_kwargs: keyword arguments for the architecture; for a
            registered one they override what is read from the checkpoint.
    Raises:
        CheckpointError / DetectionError / ArchSpecError /
        ArchitectureGuessError (ValueErrors) with one-line messages.
    """
    if modelpath is not None and str(modelpath) == "bundled" and not Path(str(modelpath)).exists():
        modelpath = None  # the name the CLI accepts, for Python callers too
    if modelpath is None:
        if arch not in (None, "tinysr") or arch_kwargs:
            raise CheckpointError(f"architecture {arch!r} needs a checkpoint path (the bundled model is a tinysr)")
        loaded = bundled_model()
    else:
        obj, notes = read_checkpoint(modelpath, unsafe_pickle=unsafe_pickle)
        if isinstance(obj, nn.Module):
            model, name = obj, type(obj).__name__
        else:
            model, name, more = _build(obj, arch, dict(arch_kwargs or {}))
            notes += more
        loaded = LoadedModel(model, name, str(modelpath), notes)
    hint = getattr(loaded.model, "input_range", None)
    if rgb_range is None and hint not in (None, 1, 1.0):
        rgb_range = float(hint)
        loaded.notes.append(f"{loaded.arch} expects inputs in [0, {hint:g}]: using rgb_range {hint:g}")
    if rgb_range not in (None, 1, 1.0):
        loaded.model = RangeAdapter(loaded.model, rgb_range)
    loaded.model = loaded.model.to(device).eval()
    return loaded


__all__ = [
    "ArchSpecError",
    "ArchitectureGuessError",
    "BUNDLED_VIDEO_WEIGHTS",
    "BUNDLED_WEIGHTS",
    "CheckpointError",
    "DetectionError",
    "CARN",
    "EDSR",
    "RNAN",
    "SAN",
    "LoadedModel",
    "RangeAdapter",
    "TinySR",
    "TinyVSR",
    "bundled_model",
    "bundled_video_model",
    "data_path",
    "list_architectures",
    "load_model",
    "register_model",
]
