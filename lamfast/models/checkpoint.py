"""Reading SR checkpoints safely and fitting them to architectures.

``torch.load(weights_only=True)`` by default; ``.safetensors`` supported;
full pickle only when the caller says so. Common wrappers are undone
automatically and reported: nested dicts (``params_ema``, ``params``,
``state_dict``, ``model_state_dict``, ``model``, ``generator``) and the
``module.`` (DataParallel) / ``_orig_mod.`` (torch.compile) prefixes.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from lamfast.errors import LamfastError, first_line

# Searched in this order: EMA weights are the ones SR papers report.
NESTED_KEYS = ("params_ema", "params", "state_dict", "model_state_dict", "model", "generator", "net_g", "network")
PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(LamfastError):
    """A checkpoint cannot be read or does not fit the model (one-line message)."""


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def read_checkpoint(path: str | Path, unsafe_pickle: bool = False) -> tuple[dict[str, torch.Tensor] | nn.Module, list[str]]:
    """Read a checkpoint file and unwrap it to a flat state_dict.

    Returns:
        (state_dict or, for a pickled whole model with ``unsafe_pickle``,
        the nn.Module; notes describing every fix-up applied).
    Raises:
        CheckpointError: missing, unreadable, a full pickle without
            ``unsafe_pickle``, or no state_dict inside.

    Example:
        >>> import tempfile, torch
        >>> from lamfast.models import read_checkpoint
        >>> path = tempfile.mkdtemp() + "/ckpt.pth"
        >>> torch.save({"params_ema": {"module.w": torch.zeros(2)}}, path)
        >>> sd, notes = read_checkpoint(path)  # weights-only
        >>> list(sd), notes
        (['w'], ["using checkpoint['params_ema']", "stripped the 'module.' prefix from every key"])
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    notes: list[str] = []
    if path.suffix == ".safetensors":
        from lamfast.optional import MissingDependency, import_optional

        try:
            load_file = import_optional("safetensors.torch", f"reading {path.name}").load_file
        except MissingDependency as exc:
            raise CheckpointError(str(exc)) from None
        try:
            obj: Any = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f"cannot read safetensors checkpoint {path}: {exc}") from None
    else:
        with open(path, "rb") as f:
            magic = f.read(2)
        # torch.save writes a zip (PK); legacy torch files and raw pickles start with the pickle opcode 0x80.
        if magic[:2] != b"PK" and magic[:1] != b"\x80":
            raise CheckpointError(f"cannot read checkpoint {path}: not a torch or safetensors file")
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=not unsafe_pickle)
        except pickle.UnpicklingError as exc:
            if not unsafe_pickle and "weights_only" in str(exc):
                raise CheckpointError(
                    f"{path.name} is a full pickle checkpoint (loading it can run code from the file); "
                    "allow it with {param} only if you trust it", param="unsafe_pickle"
                ) from None
            raise CheckpointError(f"cannot read checkpoint {path}: {first_line(exc)}") from None
        except Exception as exc:  # corrupt zip, truncated file, not a torch file
            raise CheckpointError(f"cannot read checkpoint {path}: {first_line(exc)}") from None
        if unsafe_pickle:
            notes.append("loaded with full pickle (unsafe_pickle: the file's code ran)")
    if isinstance(obj, nn.Module):
        notes.append("checkpoint holds a whole pickled model; using it as is")
        return obj, notes
    while not _is_state_dict(obj):
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"{path.name} holds no state_dict (found {type(obj).__name__})")
        key = next((k for k in NESTED_KEYS if k in obj and isinstance(obj[k], (Mapping, nn.Module))), None)
        if key is None:
            tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
            if tensors:
                dropped = [k for k in obj if k not in tensors]
                notes.append(f"ignored non-tensor entries: {', '.join(map(str, dropped[:5]))}")
                obj = tensors
                break
            raise CheckpointError(
                f"{path.name} holds no state_dict: top-level keys are {', '.join(map(str, list(obj)[:8]))}"
            )
        notes.append(f"using checkpoint[{key!r}]")
        obj = obj[key]
        if isinstance(obj, nn.Module):
            obj = obj.state_dict()
    sd = dict(obj)
    for prefix in PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix) :]: v for k, v in sd.items()}
            notes.append(f"stripped the {prefix!r} prefix from every key")
    return sd, notes


def _listing(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def fit_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor], arch: str) -> None:
    """Load ``sd`` into ``model`` strictly, or raise one line naming the mismatch.

    Example:
        >>> import torch
        >>> from lamfast.models import TinySR, fit_state_dict
        >>> model = TinySR(scale=2)
        >>> fit_state_dict(model, TinySR(scale=2).state_dict(), "tinysr")  # strict: raises one line on a mismatch
    """
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys: {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_listing(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {_listing(shapes, 2)}")
        raise CheckpointError(f"checkpoint does not fit architecture {arch!r}: " + "; ".join(parts))
    model.load_state_dict(sd, strict=True)
