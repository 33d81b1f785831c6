"""What defines one unit of dataset-scale LAM, and its key in the store.

A *unit* is one (image, model) pair under one :class:`RunConfig`. Its key is
made of content hashes (the image's bytes, the model's, the parameters'), so
a store moved to another machine, or a dataset mounted elsewhere, resumes.
The worker that computes units is :mod:`lamfast.dataset.worker`; the runner
(:mod:`lamfast.dataset.runner`) plans them and commits the results.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from lamfast.errors import LamfastError
from lamfast.lam.params import LAMParams
from lamfast.request import ModelSpec


@dataclass(frozen=True)
class RunConfig:
    """What defines a result (hashed into its key), plus how to compute it.

    ``lam`` holds the path parameters (its ``batch_size`` changes speed,
    not results); ``crop``, ``unsafe_pickle`` and ``device`` are not part
    of the key either.
    """

    windows: str = "top:8:16"
    lam: LAMParams = LAMParams()
    lr_input: bool = False
    rgb_range: float | None = None
    crop: str | int = "auto"
    unsafe_pickle: bool = False
    device: str = "cpu"
    arch_kwargs: str | None = None  # JSON object, for every model of the run
    # Where data-dependent windows (top:K) are chosen, once per image for
    # every model: None = the HR image's edges; else a model spec whose SR
    # output is used (the reference model).
    windows_from: str | None = None
    # What the models are fed: "rgb", "gray" or "y"; None chooses per model from its first convolution.
    color: str | None = None
    # Inputs are clips (folders of frames) for video models; ``frame`` is the output frame attributed
    # (None: the middle one, or the one output of a centre-frame model).
    video: bool = False
    frame: int | None = None
    # top:K windows are kept this many SR pixels apart (None: the window size, no overlap; 0: as chosen
    # before non-maximum suppression existed).
    min_distance: int | None = None

    def window_spec(self) -> dict[str, Any]:
        """The parsed ``windows`` spec, with ``min_distance`` for ``top:K``."""
        from lamfast.lam.windows import parse_spec

        spec = parse_spec(self.windows)
        md = self.min_distance
        if md is not None and (isinstance(md, bool) or not isinstance(md, int) or md < 0):
            raise LamfastError(f"min_distance must be an integer >= 0, got {md!r}", param="min_distance")
        if spec["kind"] == "top":
            spec["min_distance"] = spec["size"] if self.min_distance is None else self.min_distance
        elif self.min_distance is not None:
            raise LamfastError(f"min_distance applies to top:K windows, not to {self.windows!r}",
                               param="min_distance")
        return spec

    def params(self) -> dict[str, Any]:
        # The keys and values of the first stores: a store written before
        # LAMParams existed resumes with the same unit keys.
        out = {"windows": self.windows, **self.lam.defining(), "lr_input": self.lr_input, "rgb_range": self.rgb_range}
        if self.windows.startswith("top:"):
            # top:K once picked per model from its own SR output; paired
            # windows are another result, so they get another key.
            out["windows_from"] = model_key(self.windows_from) if self.windows_from else "hr"
            # windows kept apart are other windows than the K best: another key
            out["min_distance"] = self.window_spec()["min_distance"]
        if self.arch_kwargs:  # only when given, so earlier stores keep their keys
            out["arch_kwargs"] = json.loads(self.arch_kwargs)
        if self.color:
            out["color"] = self.color
        if self.video:  # only for clips, so image stores keep their keys
            out["video"] = True
            out["frame"] = self.frame
        return out

    def params_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.params(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Unit:
    """One (image, model) pair under one parameter set.

    ``image`` and ``model`` say where the files are on this machine (for
    loading and for the report). The key is made of what stays when the
    data moves: ``name``, the image's path relative to the input it was
    found under, and the content hashes ``image_sha`` and ``model_sha`` (the
    image's bytes; the checkpoint's, and the architecture file's when one is
    named). So the same files mounted elsewhere are the same unit, and a
    file replaced at the same path is another one (the runner then drops
    the old one's rows).
    """

    image: str
    model: str
    params_hash: str
    image_sha: str | None = None
    model_sha: str | None = None
    name: str | None = None  # default: the image's file name
    label: str | None = None  # what reports call the model (not part of the key: renaming keeps results)

    @property
    def key(self) -> str:
        # A file that cannot be read has no hash: its path stands in, and the unit fails, saying why.
        name = self.name or self.image.replace("\\", "/").rpartition("/")[2]
        model = self.model_sha or f"unreadable:{self.model}"
        return f"{name}|{self.image_sha or 'unreadable'}|{model}|{self.params_hash}"


def model_key(spec: str) -> str:
    """What stands for a model spec in a parameter hash: its content hash (its text if unreadable)."""
    parsed = ModelSpec.parse(spec)
    return parsed.sha or parsed.resolved().text
