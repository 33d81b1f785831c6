"""Dataset-scale LAM: many images × models × windows into a resumable store.

A *unit* is one (image, model) pair: its windows run in one LAM engine call
(:func:`lamfast.lam.lam_windows`: one SR forward, batched crops or one
shared path) and are committed in one
transaction. Rerunning the same command skips finished units; ``shard=(k, n)``
keeps the units whose key hashes to k modulo n, for any launcher.
"""
from __future__ import annotations

import glob
import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch

from lamfast.dataset.store import ResultStore, UnitRecord, encode_map
from lamfast.lam.params import LAMParams

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}
MANIFEST_SUFFIXES = {".txt", ".lst", ".csv", ".manifest"}


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

    def params(self) -> dict[str, Any]:
        # The keys and values of the first stores: a store written before
        # LAMParams existed resumes with the same unit keys.
        return {"windows": self.windows, **self.lam.defining(), "lr_input": self.lr_input, "rgb_range": self.rgb_range}

    def params_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.params(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Unit:
    image: str
    model: str
    params_hash: str

    @property
    def key(self) -> str:
        return f"{self.image}|{self.model}|{self.params_hash}"


@dataclass
class RunSummary:
    units_total: int = 0
    units_skipped: int = 0
    units_done: int = 0
    units_failed: int = 0
    windows_done: int = 0
    windows_failed: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


def discover_images(inputs: Iterable[str]) -> list[str]:
    """Image paths from folders (recursive), globs and manifest files, sorted and deduplicated.

    A manifest lists one path per line (relative to the manifest; ``#`` comments).
    Listed files that do not exist are kept, to become failed rows.
    """
    found: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += [str(f.resolve()) for f in sorted(p.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
        elif p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES:
            for line in p.read_text().splitlines():
                line = line.split("#", 1)[0].strip().split(",", 1)[0].strip()
                if line:
                    found.append(str((p.parent / line).resolve()))
        elif p.is_file():
            found.append(str(p.resolve()))
        else:
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise ValueError(f"input {item!r} is not a folder, file, manifest or matching glob")
            found += [str(Path(m).resolve()) for m in matches if Path(m).is_file()]
    return sorted(dict.fromkeys(found))


def model_id(spec: str) -> str:
    """Stable id of a model spec: ``bundled``, ``PATH`` or ``ARCH:PATH`` (path resolved)."""
    if spec == "bundled":
        return spec
    arch, path = split_model_spec(spec)
    resolved = str(Path(path).resolve())
    return f"{arch}:{resolved}" if arch else resolved


def split_model_spec(spec: str) -> tuple[str | None, str | None]:
    if spec == "bundled":
        return None, None
    arch, sep, path = spec.partition(":")
    if sep and arch and not Path(spec).exists() and "/" not in arch:
        return arch, path
    return None, spec


def in_shard(unit_key: str, shard: tuple[int, int] | None) -> bool:
    if shard is None:
        return True
    k, n = shard
    return int(hashlib.sha1(unit_key.encode()).hexdigest(), 16) % n == k


def plan(images: list[str], models: list[str], config: RunConfig, shard: tuple[int, int] | None) -> list[Unit]:
    h = config.params_hash()
    units = [Unit(img, model_id(m), h) for m in models for img in images]
    return [u for u in units if in_shard(u.key, shard)]


class UnitWorker:
    """Computes units; caches loaded models. Used by the local and the Ray engine."""

    def __init__(self, config: RunConfig, model_specs: list[str]):
        self.config = config
        self.specs = {model_id(s): s for s in model_specs}
        self._models: dict[str, Any] = {}

    def _model(self, mid: str):
        if mid not in self._models:
            from lamfast.models import load_model

            arch, path = split_model_spec(self.specs[mid])
            try:
                loaded = load_model(path, arch=arch, unsafe_pickle=self.config.unsafe_pickle,
                                    rgb_range=self.config.rgb_range, device=self.config.device)
                from lamfast.lam import infer_scale

                self._models[mid] = (loaded.model, infer_scale(loaded.model, self.config.device), None)
            except (ValueError, OSError, RuntimeError, KeyError) as exc:
                self._models[mid] = (None, None, f"model: {_first_line(exc)}")
        return self._models[mid]

    def __call__(self, unit: Unit) -> UnitRecord:
        from lamfast.imageio import prepare_images, read_rgb, to_tensor
        from lamfast.lam import LAMError
        from lamfast.lam.engine import compute
        from lamfast.lam.windows import parse_spec, resolve

        start = time.perf_counter()
        cfg = self.config
        record = UnitRecord(unit.key, unit.image, unit.model, unit.params_hash, "ok")
        base = {"unit_key": unit.key, "image": unit.image, "model": unit.model, "params_hash": unit.params_hash,
                "params": json.dumps(cfg.params(), sort_keys=True)}
        try:
            model, scale, model_error = self._model(unit.model)
            if model_error:
                raise _UnitFailure(model_error)
            try:
                img, _ = read_rgb(unit.image)
                if cfg.lr_input:
                    lr = img
                else:
                    _, lr = prepare_images(img, scale)
            except ValueError as exc:
                raise _UnitFailure(f"image: {_first_line(exc)}") from None
            x = to_tensor(lr)
            spec = parse_spec(cfg.windows)
            chosen: list = []

            def windows_of(sr: torch.Tensor) -> list:
                # Chosen on the SR output the engine computes anyway.
                chosen.extend(resolve(spec, sr))
                if not chosen:
                    raise _UnitFailure(f"no window of the spec {cfg.windows!r} fits the "
                                       f"{sr.shape[-2]}x{sr.shape[-1]} SR image")
                return chosen

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # NaN losses are recorded per row
                results = compute(model, x, windows_of, cfg.lam, device=cfg.device, errors="return", crop=cfg.crop)
            windows = chosen
            for (h, w, s), r in zip(windows, results):
                row = {**base, "key": f"{unit.key}|{h},{w},{s}", "h": h, "w": w, "size": s}
                if isinstance(r, LAMError):
                    row.update(status="failed", error=_first_line(r))
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
            record.status, record.error = "failed", f"lam: {_first_line(exc)}"
            record.rows = [{**base, "key": f"{unit.key}|*", "h": -1, "w": -1, "size": -1, "status": "failed",
                            "error": record.error}]
        record.seconds = time.perf_counter() - start
        return record


class _UnitFailure(Exception):
    pass


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def run(
    inputs: Iterable[str],
    models: list[str],
    store: str | Path,
    config: RunConfig = RunConfig(),
    *,
    shard: tuple[int, int] | None = None,
    engine: str = "local",
    progress: bool = True,
    retry_failed: bool = False,
    ray_actors: int | None = None,
) -> RunSummary:
    """Run LAM over a dataset into ``store`` (SQLite), resuming where it stopped.

    Args:
        inputs: folders, globs or manifest files of images.
        models: ``"bundled"``, checkpoint paths, or ``"ARCH:PATH"``.
        store: the SQLite results file (created if missing).
        config: window spec and LAM parameters (see :class:`RunConfig`).
        shard: ``(k, n)``: only units whose key hashes to k mod n.
        engine: ``"local"`` or ``"ray"`` (Ray Data actor pool; ``pip install lamfast[ray]``).
        progress: tqdm bar with windows/s and ETA.
        retry_failed: also redo units that failed before.
        ray_actors: actors in the Ray pool (default: GPUs if any, else CPUs).
    Returns:
        RunSummary with counts; failures are rows in the store, never exceptions.
    """
    if not models:
        raise ValueError("no models given")
    if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise ValueError(f"shard must be k/n with 0 <= k < n, got {shard[0]}/{shard[1]}")
    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
    from lamfast.lam.windows import parse_spec

    parse_spec(config.windows)  # fail fast on a bad spec
    images = discover_images(inputs)
    if not images:
        raise ValueError("no images found in the inputs")
    start = time.perf_counter()
    summary = RunSummary()
    with ResultStore(store) as db:
        units = plan(images, models, config, shard)
        done = db.finished_units(retry_failed=retry_failed)
        todo = [u for u in units if u.key not in done]
        summary.units_total, summary.units_skipped = len(units), len(units) - len(todo)
        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="lamfast run", unit="image")

        def commit(record: UnitRecord) -> None:
            db.write_unit(record)
            ok = sum(1 for r in record.rows if r["status"] == "ok")
            summary.windows_done += ok
            summary.windows_failed += sum(1 for r in record.rows if r["status"] != "ok" and r["h"] >= 0)
            if record.status == "ok":
                summary.units_done += 1
            else:
                summary.units_failed += 1
                summary.failures.append(f"{Path(record.image).name} × {record.model}: {record.error}")
            if bar is not None:
                bar.update(1)
                bar.set_postfix(windows_per_s=f"{summary.windows_done / max(time.perf_counter() - start, 1e-9):.2f}",
                                failed=summary.units_failed)

        try:
            if engine == "ray":
                from lamfast.dataset.ray_engine import run_units

                for record in run_units(todo, config, models, actors=ray_actors):
                    commit(record)
            else:
                worker = UnitWorker(config, models)
                for unit in todo:
                    commit(worker(unit))
        finally:
            if bar is not None:
                bar.close()
    summary.seconds = time.perf_counter() - start
    return summary


__all__ = ["RunConfig", "RunSummary", "Unit", "UnitWorker", "discover_images", "plan", "run"]
