"""The worker that computes units (:class:`UnitWorker`), for the local and the Ray engine.

A unit's failures (the model, the image, a window) become failed rows of
its record, never exceptions: a dataset run goes on past them.
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from lamfast.dataset.store import ResultRow, UnitRecord
from lamfast.dataset.units import RunConfig, Unit
from lamfast.descriptor import ModelDescriptor
from lamfast.errors import LAMError, LamfastError, first_line
from lamfast.lam import lam_windows
from lamfast.lam.progress import PathProgress
from lamfast.lam.srmodel import sr_output
from lamfast.lam.windows import TopEdges, check_window
from lamfast.models import ModelSpec, load_model
from lamfast.request import SRClip, SRInput, prepare_clip, prepare_input


class _UnitFailure(Exception):
    pass


class UnitWorker:
    """Computes units; caches loaded models and the windows of each image.

    Args:
        config: the run's parameters.
        model_specs: the model specs units name (``Unit.model`` is a spec's
            :meth:`~lamfast.models.ModelSpec.resolved` text).
    """

    def __init__(self, config: RunConfig, model_specs: list[str]):
        self.config = config
        self.specs = {s.text: s for s in (ModelSpec.parse(m).resolved() for m in model_specs)}
        self.reference = ModelSpec.parse(config.windows_from).resolved() if config.windows_from else None
        if self.reference is not None:
            self.specs.setdefault(self.reference.text, self.reference)
        self._models: dict[str, tuple[ModelDescriptor | None, str | None]] = {}
        self._chosen: dict[tuple[str, int], list] = {}  # (image, scale) -> its windows, shared by the models
        self.progress: PathProgress | bool = False  # what the path loops report to (a run's bar)

    def _model(self, key: str) -> tuple[ModelDescriptor | None, str | None]:
        if key not in self._models:
            cfg = self.config
            try:
                self._models[key] = (load_model(self.specs[key], model_kwargs=cfg.model_kwargs, device=cfg.device,
                                                unsafe_pickle=cfg.unsafe_pickle, rgb_range=cfg.rgb_range), None)
            except (ValueError, OSError, RuntimeError, KeyError) as exc:
                self._models[key] = (None, f"model: {first_line(exc)}")
        return self._models[key]

    def load_all(self) -> None:
        """Load every model now (kept for the units): a spec that cannot load is one LamfastError
        before any work, not a failure row per image."""
        for key, spec in self.specs.items():
            _, error = self._model(key)
            if error is not None:
                reason = error.removeprefix("model: ")
                where = spec.path or key
                raise LamfastError(reason if where in reason else f"model {where}: {reason}", param="models")

    def _input(self, unit: Unit, model: ModelDescriptor) -> SRInput | SRClip:
        """The unit's image (or clip) prepared for its model (the one scale rule of
        :func:`lamfast.request.prepare_input` and :func:`lamfast.request.prepare_clip`)."""
        prepare = prepare_clip if self.config.video else prepare_input
        try:
            return prepare(model, unit.image, self.config.lr_input, device=self.config.device, color=self.config.color)
        except LamfastError as exc:
            where = "image" if exc.param in ("image", "video") else "model"
            raise _UnitFailure(f"{where}: {first_line(exc)}") from None

    def _windows(self, unit: Unit, sr_input: SRInput | SRClip) -> list:
        """The unit's windows in SR pixels: the same for every model of the same scale.

        Data-dependent specs (``top:K``) pick them from the HR image's edges
        (the bicubic upscale of an LR input), or from the reference model's
        SR output; never from the model being explained. For a clip, from
        the HR frame of the attributed output frame (the middle one unless
        ``frame`` is given).
        """
        from lamfast.imageio import model_input

        cfg, x, scale = self.config, sr_input.tensor(), sr_input.scale
        if not isinstance(cfg.windows, TopEdges):
            return cfg.windows.resolve(torch.empty(0, x.shape[-2] * scale, x.shape[-1] * scale))
        key = (unit.image, scale)
        if key not in self._chosen and isinstance(sr_input, SRClip):
            T = len(sr_input.hr)
            t = cfg.frame % T if cfg.frame is not None and -T <= cfg.frame < T else (T + 1) // 2 - 1
            self._chosen[key] = cfg.windows.resolve(model_input(sr_input.hr[t], sr_input.color).float())
        if key not in self._chosen:
            if self.reference is not None:
                ref, error = self._model(self.reference.text)
                if error:
                    raise _UnitFailure(f"reference model for the windows: {error}")
                try:
                    sr = sr_output(ref, x)
                except LamfastError as exc:
                    raise _UnitFailure(f"reference model for the windows: {first_line(exc)}") from None
                if tuple(sr.shape[-2:]) != (x.shape[-2] * scale, x.shape[-1] * scale):
                    raise _UnitFailure(f"the reference model's output {tuple(sr.shape[-2:])} is not this model's "
                                       f"x{scale} size: windows cannot be paired")
            else:
                sr = sr_input.hr_tensor()
            self._chosen[key] = cfg.windows.resolve(sr.float().cpu())
        return list(self._chosen[key])

    def _cem(self, model: ModelDescriptor, sr_input: SRInput, window: tuple[int, int, int]):
        """The CEM of one window as its ROI (:func:`lamfast.cem`), or the LamfastError it failed with."""
        import numpy as np

        from lamfast.cem import cem

        h, w, size = window
        try:
            return cem(model, sr_input.tensor(), np.asarray(sr_input.hr), h, w, size, **self.config.cem.kwargs(),
                       batch_size=self.config.batch_size, crop=self.config.crop, progress=self.progress)
        except LamfastError as exc:
            return exc

    def _quality(self, sr_input: SRInput | SRClip, results: list) -> dict[str, Any]:
        """PSNR and SSIM of the model's output on the image (:mod:`lamfast.quality`); none where the HR
        image is not known (LR inputs), for clips, or where no window ran."""
        from lamfast.lam import LAMResult
        from lamfast.quality import sr_quality

        if self.config.lr_input or isinstance(sr_input, SRClip):
            return {}
        sr = next((r.sr for r in results if isinstance(r, LAMResult)), None)
        if sr is None:
            return {}
        try:
            q = sr_quality(sr.float(), sr_input.hr_tensor().to(sr.device).float(), sr_input.scale)
        except LamfastError:  # an image too small for the border and SSIM's window
            return {}
        return {"psnr": q.psnr, "ssim": q.ssim}

    def __call__(self, unit: Unit) -> UnitRecord:
        start = time.perf_counter()
        cfg = self.config
        record = UnitRecord(unit.key, unit.image, unit.model, unit.params_hash, "ok", label=unit.label)
        base = {"unit_key": unit.key, "image": unit.image, "model": unit.model, "params_hash": unit.params_hash,
                "params": json.dumps(cfg.params(), sort_keys=True), "label": unit.label}
        try:
            model, model_error = self._model(unit.model)
            if model_error:
                raise _UnitFailure(model_error)
            record.model_notes = list(model.notes)
            # said once per model: the runner keeps each note once
            record.notes += [f"{unit.label or unit.model}: {n}" for n in record.model_notes]
            sr_input = self._input(unit, model)
            windows = self._windows(unit, sr_input)
            hr = sr_input.hr[0] if isinstance(sr_input, SRClip) else sr_input.hr
            if not windows:
                raise _UnitFailure(f"no window of the spec {cfg.windows.text!r} fits the {hr.height}x{hr.width} "
                                   "SR image")
            if isinstance(cfg.windows, TopEdges) and len(windows) < cfg.windows.k:
                record.notes.append(f"{Path(unit.image).name}: {len(windows)} of the {cfg.windows.k} top windows "
                                    f"fit {cfg.windows.distance} px apart on the {hr.height}x{hr.width} image")
            # A window that cannot run fails alone: its row says why, the unit's other windows run.
            outside = {}
            for win in windows:
                try:
                    check_window(*win, sr_shape=(hr.height, hr.width))
                except LAMError as exc:
                    outside[win] = exc
            inside = [win for win in windows if win not in outside]
            if cfg.method == "cem":
                computed = iter([self._cem(model, sr_input, win) for win in inside])
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # NaN steps are recorded per row
                    computed = iter(lam_windows(model, sr_input.tensor(), inside, frame=cfg.frame, params=cfg.lam,
                                                batch_size=cfg.batch_size, crop=cfg.crop, errors="return",
                                                progress=self.progress)
                                    if inside else [])
            results = [outside[win] if win in outside else next(computed) for win in windows]
            lr = sr_input.lr[0] if isinstance(sr_input, SRClip) else sr_input.lr
            quality = {**self._quality(sr_input, results), "lr_size": f"{lr.height}x{lr.width}"}
            done = ResultRow.cem_ok if cfg.method == "cem" else ResultRow.ok
            record.rows = [ResultRow.failed(base, win, first_line(r), **quality) if isinstance(r, LamfastError)
                           else done(base, win, r, **quality) for win, r in zip(windows, results)]
            failed = next((row for row in record.rows if row.status != "ok"), None)
            if failed is not None:
                record.status, record.error = "failed", failed.error
        except _UnitFailure as exc:
            record.status, record.error, record.rows = "failed", str(exc), []
        except (ValueError, RuntimeError) as exc:  # the model failing on this image, etc.
            record.status, record.error, record.rows = "failed", f"{cfg.method}: {first_line(exc)}", []
        if record.status == "failed" and not record.rows:
            record.rows = [ResultRow.failed(base, None, record.error)]
        record.seconds = time.perf_counter() - start
        return record

