"""What lamfast ships (``lamfast/data``), and the word ``"bundled"`` that stands for it.

Wherever a model, an image or a clip is named, ``"bundled"`` names lamfast's
own (the x4 TinySR, the astronaut photo, the coffee clip, ...), unless a
file of that name exists in the current folder.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

BUNDLED = "bundled"
# What "bundled" means for each kind of input.
FILES = {
    "sr_model": "tinysr_x4.pt",  # scripts/train_tiny_sr.py
    "video_model": "tinyvsr_x2.pt",  # scripts/train_tiny_vsr.py
    "classifier": "shapes_cnn.pt",  # scripts/train_tiny_classifier.py
    "image": "astronaut.png",
    "clip": "clip_coffee",
}


def data_path(name: str) -> Path:
    """Path of a file shipped in ``lamfast/data``.

    Example:
        >>> from lamfast.bundled import data_path
        >>> data_path("astronaut.png").name
        'astronaut.png'
    """
    return Path(str(resources.files("lamfast") / "data" / name))


def is_bundled(text: object) -> bool:
    """Whether ``text`` is the word ``"bundled"`` (and no file of that name is in the way)."""
    return text is not None and str(text) == BUNDLED and not Path(str(text)).exists()


def bundled_file(kind: str) -> Path:
    """The shipped file that ``"bundled"`` names for ``kind`` (a key of :data:`FILES`)."""
    return data_path(FILES[kind])


def resolve(text: "str | Path", kind: str) -> "str | Path":
    """``text``, or the shipped file of ``kind`` where ``text`` is ``"bundled"``."""
    return bundled_file(kind) if is_bundled(text) else text


__all__ = ["BUNDLED", "FILES", "bundled_file", "data_path", "is_bundled", "resolve"]
