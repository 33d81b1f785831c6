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

from lamfast.dataset.store import UnitRecord, encode_map
from lamfast.dataset.units import RunConfig, Unit
from lamfast.errors import LamfastError, first_line
from lamfast.request import ModelSpec, SRClip, SRInput, prepare_clip, prepare_input


class _UnitFailure(Exception):
    pass


class UnitWorker:
    """Computes units; caches loaded models, their scales and the windows of each image.

    Args:
        config: the run's parameters.
        model_specs: the model specs units name (``Unit.model`` is a spec's
            :meth:`~lamfast.request.ModelSpec.resolved` text).
    """

    def __init__(self, config: RunConfig, model_specs: list[str]):
        self.config = config
        self.specs = {s.text: s for s in (ModelSpec.parse(m).resolved() for m in model_specs)}
        self.reference = ModelSpec.parse(config.windows_from).resolved() if config.windows_from else None
        if self.reference is not None:
            self.specs.setdefault(self.reference.text, self.reference)
        self._models: dict[str, tuple[Any, str | None]] = {}
        self._notes: dict[str, list[str]] = {}  # how the loader read each model
        self._scales: dict[str, int] = {}  # a model's scale, found on the first image it meets
        self._chosen: dict[tuple[str, int], list] = {}  # (image, scale) -> its windows, shared by the models

    def _model(self, key: str):
        if key not in self._models:
            try:
                loaded = self.specs[key].load(device=self.config.device, unsafe_pickle=self.config.unsafe_pickle,
                                              rgb_range=self.config.rgb_range,
                                              arch_kwargs=json.loads(self.config.arch_kwargs or "{}"))
                self._models[key] = (loaded.model, None)
                self._notes[key] = list(loaded.notes)
            except (ValueError, OSError, RuntimeError, KeyError) as exc:
                self._models[key] = (None, f"model: {first_line(exc)}")
        return self._models[key]

    def _input(self, unit: Unit, model) -> SRInput | SRClip:
        """The unit's image (or clip) prepared for its model (the one scale rule of
        :func:`lamfast.request.prepare_input` and :func:`lamfast.request.prepare_clip`)."""
        prepare = prepare_clip if self.config.video else prepare_input
        try:
            sr_input = prepare(model, unit.image, self.config.lr_input, device=self.config.device,
                               scale=self._scales.get(unit.model), color=self.config.color)
        except LamfastError as exc:
            where = "image" if exc.param in ("image", "video") else "model"
            raise _UnitFailure(f"{where}: {first_line(exc)}") from None
        self._scales[unit.model] = sr_input.scale
        return sr_input

    def _windows(self, unit: Unit, sr_input: SRInput | SRClip) -> list:
        """The unit's windows in SR pixels: the same for every model of the same scale.

        Data-dependent specs (``top:K``) pick them from the HR image's edges
        (the bicubic upscale of an LR input), or from the reference model's
        SR output; never from the model being explained. For a clip, from
        the HR frame of the attributed output frame (the middle one unless
        ``frame`` is given); a reference model is for images only.
        """
        from lamfast.imageio import model_input
        from lamfast.lam.windows import resolve

        cfg, x, scale = self.config, sr_input.tensor(), sr_input.scale
        spec = cfg.window_spec()
        if spec["kind"] != "top":
            return resolve(spec, torch.empty(0, x.shape[-2] * scale, x.shape[-1] * scale))
        key = (unit.image, scale)
        if key not in self._chosen and isinstance(sr_input, SRClip):
            T = len(sr_input.hr)
            t = cfg.frame % T if cfg.frame is not None and -T <= cfg.frame < T else (T + 1) // 2 - 1
            self._chosen[key] = resolve(spec, model_input(sr_input.hr[t], sr_input.color).float())
        if key not in self._chosen:
            if self.reference is not None:
                ref, error = self._model(self.reference.text)
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
                sr = sr_input.hr_tensor()
            self._chosen[key] = resolve(spec, sr.float().cpu())
        return list(self._chosen[key])

    def _quality(self, sr_input: SRInput | SRClip, results: list):
        """PSNR and SSIM of the model's output on the image (:mod:`lamfast.quality`); None where the HR
        image is not known (LR inputs), for clips, or where no window ran."""
        from lamfast.lam import LAMResult
        from lamfast.quality import sr_quality

        if self.config.lr_input or isinstance(sr_input, SRClip):
            return None
        sr = next((r.sr for r in results if isinstance(r, LAMResult)), None)
        if sr is None:
            return None
        try:
            return sr_quality(sr.float(), sr_input.hr_tensor().to(sr.device).float(), sr_input.scale)
        except LamfastError:  # an image too small for the border and SSIM's window
            return None

    def _lam(self, model, sr_input: SRInput | SRClip, windows: list) -> list:
        """LAM of every window (a LAMError in place of a window that failed)."""
        from lamfast.lam import lam_video_windows, lam_windows

        cfg = self.config
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NaN losses are recorded per row
            if isinstance(sr_input, SRClip):
                return lam_video_windows(model, sr_input.tensor(), windows, frame=cfg.frame, params=cfg.lam,
                                         device=cfg.device, errors="return", crop=cfg.crop)
            return lam_windows(model, sr_input.tensor(), windows, params=cfg.lam, device=cfg.device,
                               errors="return", crop=cfg.crop)

    def __call__(self, unit: Unit) -> UnitRecord:
        from lamfast.lam import LAMError, VideoLAMResult
        from lamfast.lam.windows import check_window

        start = time.perf_counter()
        cfg = self.config
        record = UnitRecord(unit.key, unit.image, unit.model, unit.params_hash, "ok", label=unit.label)
        base = {"unit_key": unit.key, "image": unit.image, "model": unit.model, "params_hash": unit.params_hash,
                "params": json.dumps(cfg.params(), sort_keys=True), "label": unit.label}
        try:
            model, model_error = self._model(unit.model)
            if model_error:
                raise _UnitFailure(model_error)
            record.model_notes = self._notes.get(unit.model, [])
            # said once per model: the runner keeps each note once
            record.notes += [f"{unit.label or unit.model}: {n}" for n in record.model_notes]
            sr_input = self._input(unit, model)
            windows = self._windows(unit, sr_input)
            hr = sr_input.hr[0] if isinstance(sr_input, SRClip) else sr_input.hr
            if not windows:
                raise _UnitFailure(f"no window of the spec {cfg.windows!r} fits the {hr.height}x{hr.width} SR image")
            spec = cfg.window_spec()
            if spec["kind"] == "top" and len(windows) < spec["k"]:
                record.notes.append(f"{Path(unit.image).name}: {len(windows)} of the {spec['k']} top windows fit "
                                    f"{spec['min_distance']} px apart on the {hr.height}x{hr.width} image")
            # A window that cannot run fails alone: its row says why, the unit's other windows run.
            outside = {}
            for win in windows:
                try:
                    check_window(*win, sr_shape=(hr.height, hr.width))
                except LAMError as exc:
                    outside[win] = exc
            inside = [win for win in windows if win not in outside]
            computed = iter(self._lam(model, sr_input, inside) if inside else [])
            results = [outside[win] if win in outside else next(computed) for win in windows]
            quality = self._quality(sr_input, results)
            lr = sr_input.lr[0] if isinstance(sr_input, SRClip) else sr_input.lr
            base.update(psnr=quality and quality.psnr, ssim=quality and quality.ssim, lr_size=f"{lr.height}x{lr.width}")
            for (h, w, s), r in zip(windows, results):
                row = {**base, "key": f"{unit.key}|{h},{w},{s}", "h": h, "w": w, "size": s}
                if isinstance(r, LAMError):
                    row.update(status="failed", error=first_line(r))
                else:
                    blob, shape = encode_map(r.attribution.detach().cpu().numpy())
                    patch, patch_shape = encode_map(r.sr[..., h:h + s, w:w + s].detach().float().cpu().numpy())
                    video = isinstance(r, VideoLAMResult)
                    row.update(status="ok", di=r.di, gini=1.0 - r.di / 100.0 if video else r.gini,
                               nan_steps=r.nan_steps, scale=r.scale, attribution=blob, attribution_shape=shape,
                               sr_patch=patch, sr_patch_shape=patch_shape,
                               seconds=r.timings["total"], timings=json.dumps({**r.timings, "crop": r.crop.summary()}))
                    if video:
                        row["video"] = json.dumps({"frame": r.frame, "frame_share": [float(v) for v in r.frame_share],
                                                   "di_per_frame": [float(v) for v in r.di_per_frame]})
                record.rows.append(row)
            if any(row["status"] != "ok" for row in record.rows):
                record.status = "failed"
                record.error = next(row["error"] for row in record.rows if row["status"] != "ok")
        except _UnitFailure as exc:
            record.status, record.error, record.rows = "failed", str(exc), []
        except (ValueError, RuntimeError) as exc:  # the model failing on this image, etc.
            record.status, record.error, record.rows = "failed", f"lam: {first_line(exc)}", []
        if record.status == "failed" and not record.rows:
            record.rows = [{**base, "key": f"{unit.key}|*", "h": -1, "w": -1, "size": -1, "status": "failed",
                            "error": record.error}]
        record.seconds = time.perf_counter() - start
        return record
