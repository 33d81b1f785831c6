"""What the command-line tests share: a random test image on disk, and ``python -m lamfast`` in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def random_png(path: Path, side: int = 24, mode: str = "RGB") -> Path:
    """A seeded random ``side`` x ``side`` PNG; RGBA has a transparent 4x4 corner."""
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (side, side, 4 if mode == "RGBA" else 3), dtype=np.uint8)
    if mode == "RGBA":
        arr[:4, :4, 3] = 0
    Image.fromarray(arr, mode).save(path)
    return path


def run_cli(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m lamfast ARGV`` as a user runs it: its own process, stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", "lamfast", *argv], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
