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

from lamfast.cem.params import CEMParams
from lamfast.errors import LamfastError
from lamfast.lam import RunOptions
from lamfast.lam.params import LAMParams
from lamfast.lam.windows import TopEdges, WindowSpec, parse_windows
from lamfast.models import ModelSpec


@dataclass(frozen=True)
class RunConfig:
    """What defines a result (hashed into its key), plus how to compute it.

    ``windows`` (a spec's text or a :class:`lamfast.lam.windows.WindowSpec`,
    parsed once here), ``method``, ``lam`` (:class:`lamfast.LAMParams`) or ``cem``
    (:class:`lamfast.cem.params.CEMParams`), ``lr_input``, ``rgb_range``, ``model_kwargs``,
    ``windows_from``, ``color``, ``video`` and ``frame`` define results; ``batch_size``, ``crop``,
    ``unsafe_pickle`` and ``device`` only say how they are computed, and are not part of the key.

    ``method="cem"`` computes a causal effect map (:func:`lamfast.cem`, task ``"sr"``) for each
    window as its ROI, against the HR image; it needs HR images (not ``lr_input``) and images, not
    clips. Its rows sit beside LAM rows in one store.

    Example:
        >>> from lamfast.dataset import RunConfig
        >>> RunConfig(windows="top:4:16").windows
        TopEdges(k=4, size=16, stride=8, min_distance=16)
        >>> from lamfast.cem.params import CEMParams
        >>> RunConfig(windows="list:152,96:32", method="cem", cem=CEMParams(fine=20)).params()["cem"]["fine"]
        20
    """

    windows: WindowSpec | str = "top:8:16"
    lam: LAMParams = LAMParams()
    method: str = "lam"
    cem: CEMParams = CEMParams()
    lr_input: bool = False
    rgb_range: float | None = None
    model_kwargs: dict | None = None  # for every model of the run
    # Where data-dependent windows (top:K) are chosen, once per image for
    # every model: None = the HR image's edges; else a model spec whose SR
    # output is used (the reference model).
    windows_from: str | None = None
    # What the models are fed: "rgb", "gray" or "y"; None chooses per model from the channels it takes.
    color: str | None = None
    # Inputs are clips (folders of frames) for video models; ``frame`` is the output frame attributed
    # (None: the middle one, or the one output of a centre-frame model).
    video: bool = False
    frame: int | None = None
    # How, not what: the run keywords of lamfast.lam_windows, and how models load.
    batch_size: int | None = None
    crop: str | int = "auto"
    unsafe_pickle: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "windows", parse_windows(self.windows))
        if not isinstance(self.lam, LAMParams):
            raise LamfastError(f"lam must be a LAMParams, got {type(self.lam).__name__}", param="lam")
        if self.method not in ("lam", "cem"):
            raise LamfastError(f"method must be 'lam' or 'cem', got {self.method!r}", param="method")
        if not isinstance(self.cem, CEMParams):
            raise LamfastError(f"cem must be a CEMParams, got {type(self.cem).__name__}", param="cem")
        if self.method == "cem" and (self.lr_input or self.video):
            raise LamfastError("method 'cem' scores each window against the ground truth: it needs HR images, not "
                               f"{'LR inputs' if self.lr_input else 'clips'}", param="method")
        if self.model_kwargs is not None and not isinstance(self.model_kwargs, dict):
            raise LamfastError(f"model_kwargs must be a dict, got {type(self.model_kwargs).__name__}",
                               param="model_kwargs")
        RunOptions(self.batch_size, self.crop)  # a bad run keyword fails here, before any unit
        if self.frame is not None and not self.video:
            raise LamfastError("frame picks an output frame of a clip: it needs video=True", param="frame")
        if self.video and self.windows_from:
            raise LamfastError("windows_from picks windows on an image model's output; for clips the windows come "
                               "from the HR frame of the attributed output frame", param="windows_from")

    def params(self) -> dict[str, Any]:
        """Everything that defines a result, as JSON-ready values (hashed into the unit keys). LAM's are as
        they were before CEM came, so stores written then resume."""
        what = self.lam.defining() if self.method == "lam" else {"method": "cem", "cem": self.cem.defining()}
        out = {"windows": self.windows.canonical, **what, "lr_input": self.lr_input,
               "rgb_range": self.rgb_range, "model_kwargs": self.model_kwargs or {}, "color": self.color,
               "video": self.video, "frame": self.frame}
        if isinstance(self.windows, TopEdges):
            # top:K picked on a reference model's SR output are other windows than the HR image's
            out["windows_from"] = model_key(self.windows_from) if self.windows_from else "hr"
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
