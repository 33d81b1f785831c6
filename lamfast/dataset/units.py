"""One unit of dataset-scale LAM: what defines it and the worker that computes it.

A *unit* is one (image, model) pair under one :class:`RunConfig`. Both
engines (local and Ray) compute units with :class:`UnitWorker`; the runner
(:mod:`lamfast.dataset.runner`) plans them and commits the results.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lamfast.dataset.store import UnitRecord, encode_map
from lamfast.errors import first_line
from lamfast.lam.params import LAMParams


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

    def params(self) -> dict[str, Any]:
        # The keys and values of the first stores: a store written before
        # LAMParams existed resumes with the same unit keys.
        out = {"windows": self.windows, **self.lam.defining(), "lr_input": self.lr_input, "rgb_range": self.rgb_range}
        if self.windows.startswith("top:"):
            # top:K once picked per model from its own SR output; paired
            # windows are another result, so they get another key.
            out["windows_from"] = model_id(self.windows_from) if self.windows_from else "hr"
        if self.arch_kwargs:  # only when given, so earlier stores keep their keys
            out["arch_kwargs"] = json.loads(self.arch_kwargs)
        return out

    def params_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.params(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Unit:
    """One (image, model) pair under one parameter set.

    ``image_sha`` and ``model_sha`` hash what the files hold (the image's
    bytes; the checkpoint's, and the architecture file's when one is named),
    so a file replaced at the same path is recomputed.
    """

    image: str
    model: str
    params_hash: str
    image_sha: str | None = None
    model_sha: str | None = None

    @property
    def key(self) -> str:
        return f"{self.image}|{self.model}|{self.params_hash}"


def model_id(spec: str) -> str:
    """Stable id of a model spec: ``bundled``, ``PATH`` or ``ARCH:PATH`` (path resolved; ARCH may be
    ``FILE.py:Class`` or ``module:Class``)."""
    if spec == "bundled":
        return spec
    arch, path = split_model_spec(spec)
    resolved = str(Path(path).resolve())
    return f"{arch}:{resolved}" if arch else resolved


def split_model_spec(spec: str) -> tuple[str | None, str | None]:
    """(architecture or None, checkpoint path): the checkpoint is after the last ':'."""
    from lamfast.models.custom import is_arch_spec

    if spec == "bundled":
        return None, None
    arch, sep, path = spec.rpartition(":")
    if not sep or not arch or not path or Path(spec).exists():
        return None, spec
    if is_arch_spec(arch) or ("/" not in arch and "\\" not in arch):
        return arch, path
    return None, spec


class UnitWorker:
    """Computes units; caches loaded models. Used by the local and the Ray engine."""

    def __init__(self, config: RunConfig, model_specs: list[str]):
        self.config = config
        self.specs = {model_id(s): s for s in model_specs}
        if config.windows_from:
            self.specs.setdefault(model_id(config.windows_from), config.windows_from)
        self._models: dict[str, Any] = {}
        self._scales: dict[str, int] = {}
        self._chosen: dict[tuple[str, int], list] = {}  # (image, scale) -> its windows, shared by the models

    def _model(self, mid: str):
        if mid not in self._models:
            from lamfast.models import load_model

            arch, path = split_model_spec(self.specs[mid])
            try:
                loaded = load_model(path, arch=arch, unsafe_pickle=self.config.unsafe_pickle,
                                    rgb_range=self.config.rgb_range, device=self.config.device,
                                    arch_kwargs=json.loads(self.config.arch_kwargs or "{}"))
                self._models[mid] = (loaded.model, None)
            except (ValueError, OSError, RuntimeError, KeyError) as exc:
                self._models[mid] = (None, f"model: {first_line(exc)}")
        return self._models[mid]

    def _scale(self, mid: str, model, img) -> int:
        """The model's SR factor, found once per model on (a corner of) the first image it meets,
        so that a model failing there is reported against that image."""
        if mid not in self._scales:
            from lamfast.imageio import corner, to_tensor
            from lamfast.lam import infer_scale

            sample = to_tensor(img if self.config.lr_input else corner(img, 48))
            self._scales[mid] = infer_scale(model, self.config.device, sample=sample)
        return self._scales[mid]

    def _windows(self, cfg: RunConfig, unit: Unit, x: torch.Tensor, hr, scale: int) -> list:
        """The unit's windows in SR pixels: the same for every model of the same scale.

        Data-dependent specs (``top:K``) pick them from the HR image's edges
        (the bicubic upscale of an LR input), or from the reference model's
        SR output; never from the model being explained.
        """
        from PIL import Image

        from lamfast.imageio import to_tensor
        from lamfast.lam.windows import parse_spec, resolve

        spec = parse_spec(cfg.windows)
        if spec["kind"] != "top":
            return resolve(spec, torch.empty(0, x.shape[-2] * scale, x.shape[-1] * scale))
        key = (unit.image, scale)
        if key not in self._chosen:
            if cfg.windows_from:
                ref, error = self._model(model_id(cfg.windows_from))
                if error:
                    raise _UnitFailure(f"reference model for the windows: {error}")
                with torch.no_grad():
                    try:
                        sr = ref(x[None].to(cfg.device).clone())[0]
                    except Exception as exc:  # noqa: BLE001
                        raise _UnitFailure(f"reference model for the windows failed: {first_line(exc)}") from None
                if tuple(sr.shape[-2:]) != (x.shape[-2] * scale, x.shape[-1] * scale):
                    raise _UnitFailure(f"the reference model's output {tuple(sr.shape[-2:])} is not this model's "
                                       f"x{scale} size: windows cannot be paired")
            else:
                base = hr if hr is not None else Image.fromarray(
                    (x.permute(1, 2, 0).numpy() * 255).round().astype("uint8")).resize(
                    (x.shape[-1] * scale, x.shape[-2] * scale), Image.BICUBIC)
                sr = to_tensor(base)
            self._chosen[key] = resolve(spec, sr.float().cpu())
        return list(self._chosen[key])

    def __call__(self, unit: Unit) -> UnitRecord:
        from lamfast.imageio import prepare_images, read_rgb, to_tensor
        from lamfast.lam import LAMError
        from lamfast.lam.engine import compute

        start = time.perf_counter()
        cfg = self.config
        record = UnitRecord(unit.key, unit.image, unit.model, unit.params_hash, "ok")
        base = {"unit_key": unit.key, "image": unit.image, "model": unit.model, "params_hash": unit.params_hash,
                "params": json.dumps(cfg.params(), sort_keys=True)}
        try:
            model, model_error = self._model(unit.model)
            if model_error:
                raise _UnitFailure(model_error)
            try:
                img, _ = read_rgb(unit.image)
            except ValueError as exc:
                raise _UnitFailure(f"image: {first_line(exc)}") from None
            try:
                scale = self._scale(unit.model, model, img)
            except LAMError as exc:
                raise _UnitFailure(f"model on {Path(unit.image).name}: {first_line(exc)}") from None
            try:
                if cfg.lr_input:
                    lr, hr = img, None
                else:
                    hr, lr = prepare_images(img, scale)
            except ValueError as exc:
                raise _UnitFailure(f"image: {first_line(exc)}") from None
            x = to_tensor(lr)
            windows = self._windows(cfg, unit, x, hr, scale)
            if not windows:
                raise _UnitFailure(f"no window of the spec {cfg.windows!r} fits the "
                                   f"{x.shape[-2] * scale}x{x.shape[-1] * scale} SR image")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # NaN losses are recorded per row
                results = compute(model, x, windows, cfg.lam, device=cfg.device, errors="return", crop=cfg.crop)
            for (h, w, s), r in zip(windows, results):
                row = {**base, "key": f"{unit.key}|{h},{w},{s}", "h": h, "w": w, "size": s}
                if isinstance(r, LAMError):
                    row.update(status="failed", error=first_line(r))
                else:
                    blob, shape = encode_map(r.attribution.detach().cpu().numpy())
                    row.update(status="ok", di=r.di, gini=r.gini, nan_steps=r.nan_steps, scale=r.scale,
                               attribution=blob, attribution_shape=shape, seconds=r.timings["total"],
                               timings=json.dumps({**r.timings, "crop": r.crop.summary()}))
                record.rows.append(row)
            if any(row["status"] != "ok" for row in record.rows):
                record.status = "failed"
                record.error = next(row["error"] for row in record.rows if row["status"] != "ok")
        except _UnitFailure as exc:
            record.status, record.error = "failed", str(exc)
            record.rows = [{**base, "key": f"{unit.key}|*", "h": -1, "w": -1, "size": -1, "status": "failed",
                            "error": str(exc)}]
        except (ValueError, RuntimeError) as exc:  # the model failing on this image, etc.
            record.status, record.error = "failed", f"lam: {first_line(exc)}"
            record.rows = [{**base, "key": f"{unit.key}|*", "h": -1, "w": -1, "size": -1, "status": "failed",
                            "error": record.error}]
        record.seconds = time.perf_counter() - start
        return record


class _UnitFailure(Exception):
    pass


def file_sha(path: str | Path | None) -> str | None:
    """sha256 of a file's bytes (None when it cannot be read: the unit then fails and says why)."""
    if path is None:
        return None
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()[:32]


def model_sha(spec: str) -> str | None:
    """Content hash of a model spec: its checkpoint's bytes (the bundled weights for
    ``bundled``), and the architecture file's bytes for ``FILE.py:Class:CKPT``."""
    from lamfast.models import BUNDLED_WEIGHTS, data_path

    if spec == "bundled":
        return file_sha(data_path(BUNDLED_WEIGHTS))
    arch, path = split_model_spec(spec)
    parts = [file_sha(path)]
    if arch and ":" in arch:
        target = arch.rpartition(":")[0]
        if target.endswith(".py") or "/" in target:
            parts.append(file_sha(target))
    if any(p is None for p in parts):
        return None
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
