"""Shared fixtures: the device x dtype matrix and the official LAM reference case."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import lamfast

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("LAMFAST_REFERENCE", REPO.parent / "shared" / "reference" / "lam_case1.npz"))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
EXT_DISABLED_BY_ENV = os.environ.get("LAMFAST_DISABLE_EXT", "0").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def reference() -> dict:
    """The official LAM case (../shared/reference/lam_case1.npz): a missing file fails, never skips."""
    if not REFERENCE.is_file():
        pytest.fail(f"reference case not found at {REFERENCE} (set LAMFAST_REFERENCE to its path)")
    with np.load(REFERENCE) as z:
        return {k: z[k] for k in z.files}


def compiled(name: str, device: str) -> bool:
    """True when ``lamfast::name`` runs a compiled kernel on ``device``."""
    from lamfast.ops._library import has_compiled_kernel

    return has_compiled_kernel(name, device)


def max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max(1, max |b|)."""
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).abs().max() / max(1.0, b.abs().max().item())).item()


__all__ = ["DEVICES", "EXT_DISABLED_BY_ENV", "compiled", "max_rel_diff", "lamfast"]
