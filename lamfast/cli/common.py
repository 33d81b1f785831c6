"""Helpers shared by the CLI commands."""
from __future__ import annotations

import sys

import torch


class CLIError(Exception):
    """A failure to report as one line on stderr, without a traceback."""


def note(message: str) -> None:
    print(f"lamfast: note: {message}", file=sys.stderr)


def warn(message: str) -> None:
    print(f"lamfast: warning: {' '.join(message.split())}", file=sys.stderr)


def resolve_device(name: str | None) -> torch.device:
    """A usable torch device from ``--device`` (default: cuda if present, else cpu)."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CLIError(f"--device {name}: not a torch device name (try cpu or cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise CLIError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
    if device.type not in ("cpu", "cuda") and not hasattr(torch, device.type):
        raise CLIError(f"--device {name}: unsupported device type")
    return device
