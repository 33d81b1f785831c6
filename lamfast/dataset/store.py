"""The results store: one SQLite file, safe to kill at any moment.

WAL mode, one transaction per finished (image, model) unit, so a killed run
leaves only whole units behind and a rerun skips exactly those. One row per
(image, model, window, parameter hash); attribution maps are stored
losslessly (zlib-compressed little-endian float32).
"""
from __future__ import annotations

import json
import sqlite3
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from lamfast.dataset.leases import SCHEMA as LEASE_SCHEMA
from lamfast.errors import LamfastError

SCHEMA = """
CREATE TABLE IF NOT EXISTS units (
    unit_key TEXT PRIMARY KEY,
    image TEXT NOT NULL,
    model TEXT NOT NULL,
    params_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    windows INTEGER NOT NULL,
    seconds REAL,
    finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    unit_key TEXT NOT NULL,
    image TEXT NOT NULL,
    model TEXT NOT NULL,
    h INTEGER NOT NULL,
    w INTEGER NOT NULL,
    size INTEGER NOT NULL,
    params_hash TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    di REAL,
    gini REAL,
    nan_steps INTEGER,
    scale INTEGER,
    attribution BLOB,
    attribution_shape TEXT,
    seconds REAL,
    timings TEXT
);
CREATE INDEX IF NOT EXISTS results_unit ON results(unit_key);
"""
# Columns added after the first stores; added in place when missing.
# ``label``: what the report and the export call the model (NULL: its spec, as stores before labels);
# ``model_notes``: JSON list of how the loader read the checkpoint.
UNIT_COLUMNS_ADDED = (("image_sha", "TEXT"), ("model_sha", "TEXT"), ("label", "TEXT"), ("model_notes", "TEXT"))
# ``video``: JSON of a clip's window ({"frame", "frame_share", "di_per_frame"}); NULL for images.
# ``psnr``, ``ssim``: the unit's SR output against its HR image (lamfast.quality); NULL where HR is unknown.
# ``lr_size``: "HxW" of the LR input, since DI depends on the image size.
# ``sr_patch``: the model's SR output in the window (float32 [C,size,size], as the maps), for the
# report's figure without loading the model again; NULL in older stores.
RESULT_COLUMNS_ADDED = (("video", "TEXT"), ("label", "TEXT"), ("psnr", "REAL"), ("ssim", "REAL"), ("lr_size", "TEXT"),
                        ("sr_patch", "BLOB"), ("sr_patch_shape", "TEXT"))

COLUMNS = ("key", "unit_key", "image", "model", "h", "w", "size", "params_hash", "params", "status", "error", "di",
           "gini", "nan_steps", "scale", "attribution", "attribution_shape", "seconds", "timings", "video", "label",
           "psnr", "ssim", "lr_size", "sr_patch", "sr_patch_shape")


def encode_map(a: np.ndarray) -> tuple[bytes, str]:
    """Lossless blob of a float32 array and its shape."""
    a = np.ascontiguousarray(a, dtype="<f4")
    return zlib.compress(a.tobytes(), 6), json.dumps(list(a.shape))


def decode_map(blob: bytes, shape: str) -> np.ndarray:
    return np.frombuffer(zlib.decompress(blob), dtype="<f4").reshape(json.loads(shape)).copy()


@dataclass
class UnitRecord:
    """Everything one (image, model) unit writes, committed together."""

    unit_key: str
    image: str
    model: str
    params_hash: str
    status: str
    error: str | None = None
    seconds: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for the user, not stored (e.g. fewer top:K windows fitted)
    label: str | None = None  # the model's name in reports and exports
    model_notes: list[str] = field(default_factory=list)  # how the loader read the model, stored with the unit


class ResultStore:
    """SQLite results store (WAL, one transaction per unit)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=60)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            # Tables and added columns in one write transaction: runs that open a new store
            # together would otherwise both add the same column.
            self.conn.executescript("BEGIN IMMEDIATE;" + SCHEMA + LEASE_SCHEMA)
            have = {r[1] for r in self.conn.execute("PRAGMA table_info(units)")}
            for name, kind in UNIT_COLUMNS_ADDED:
                if name not in have:
                    self.conn.execute(f"ALTER TABLE units ADD COLUMN {name} {kind}")
            have = {r[1] for r in self.conn.execute("PRAGMA table_info(results)")}
            for name, kind in RESULT_COLUMNS_ADDED:
                if name not in have:
                    self.conn.execute(f"ALTER TABLE results ADD COLUMN {name} {kind}")
            self.conn.commit()
        except sqlite3.DatabaseError as exc:
            raise LamfastError(f"{self.path} is not a lamfast results store ({exc})") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def finished_units(self, retry_failed: bool = False) -> dict[str, tuple[str | None, str | None]]:
        """Unit keys already in the store (only successful ones with ``retry_failed``), each with
        the (image_sha, model_sha) it was computed from (None in stores older than those columns)."""
        sql = "SELECT unit_key, image_sha, model_sha FROM units" + (" WHERE status = 'ok'" if retry_failed else "")
        return {key: (img, mod) for key, img, mod in self.conn.execute(sql)}

    def finished_times(self) -> dict[str, float]:
        """When each stored unit was committed: a worker that planned its work from these sees, when
        it claims a unit, whether another worker finished it since (:mod:`lamfast.dataset.leases`)."""
        return dict(self.conn.execute("SELECT unit_key, finished_at FROM units"))

    def write_unit(self, unit: UnitRecord, image_sha: str | None = None, model_sha: str | None = None,
                   replaces: str | None = None) -> None:
        """Commit a unit and all its rows in one transaction (replacing an earlier try, and the unit
        ``replaces``: the one its image or model replaced at the same path)."""
        with self.conn:
            for key in {unit.unit_key, replaces} - {None}:
                self.conn.execute("DELETE FROM results WHERE unit_key = ?", (key,))
                self.conn.execute("DELETE FROM units WHERE unit_key = ?", (key,))
            # The unit's lease ends with its commit (whoever held it: the result is the same).
            self.conn.execute("DELETE FROM leases WHERE unit_key = ?", (unit.unit_key,))
            self.conn.executemany(
                f"INSERT OR REPLACE INTO results ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                [tuple(row.get(c) for c in COLUMNS) for row in unit.rows],
            )
            self.conn.execute(
                "INSERT OR REPLACE INTO units (unit_key, image, model, params_hash, status, error, windows, seconds, "
                "finished_at, image_sha, model_sha, label, model_notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (unit.unit_key, unit.image, unit.model, unit.params_hash, unit.status, unit.error,
                 sum(1 for r in unit.rows if r["status"] == "ok"), unit.seconds, time.time(), image_sha, model_sha,
                 unit.label, json.dumps(unit.model_notes)),
            )

    def rows(self, with_maps: bool = False) -> Iterator[dict[str, Any]]:
        """Every result row as a dict (attribution decoded to ndarray with ``with_maps``)."""
        cur = self.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM results ORDER BY image, model, h, w, size, key")
        return self._decoded(cur, with_maps)

    def rows_of(self, unit_prefix: str, with_maps: bool = False) -> Iterator[dict[str, Any]]:
        """The result rows of the units whose key starts with ``unit_prefix`` (as :meth:`rows`)."""
        cur = self.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM results WHERE substr(unit_key, 1, ?) = ? "
                                "ORDER BY key", (len(unit_prefix), unit_prefix))
        return self._decoded(cur, with_maps)

    def relabel(self, labels: list[tuple[str, str | None]]) -> None:
        """Give stored units (and their rows) the model labels of this run: ``[(unit_key, label)]``.
        Labels are not part of the key, so a renamed model keeps its results under its new name."""
        with self.conn:
            for key, label in labels:
                self.conn.execute("UPDATE units SET label = ? WHERE unit_key = ? AND label IS NOT ?", (label, key, label))
                self.conn.execute("UPDATE results SET label = ? WHERE unit_key = ? AND label IS NOT ?",
                                  (label, key, label))

    def models(self) -> dict[str, dict[str, Any]]:
        """Per model label (its spec in stores before labels): ``{"spec", "sha", "notes"}``, the spec it
        was loaded from, its content hash and how the loader read it (its latest unit's)."""
        out: dict[str, dict[str, Any]] = {}
        for label, model, sha, notes in self.conn.execute(
                "SELECT label, model, model_sha, model_notes FROM units ORDER BY finished_at"):
            out[label or model] = {"spec": model, "sha": sha, "notes": json.loads(notes) if notes else []}
        return out

    @staticmethod
    def _decoded(cur, with_maps: bool) -> Iterator[dict[str, Any]]:
        for values in cur:
            row = dict(zip(COLUMNS, values))
            blob, shape = row.pop("attribution"), row.pop("attribution_shape")
            patch, patch_shape = row.pop("sr_patch"), row.pop("sr_patch_shape")
            # the model as people name it; the spec it was loaded from stays beside it
            row["model_spec"] = row["model"]
            row["model"] = row.pop("label") or row["model"]
            if with_maps:
                row["attribution"] = decode_map(blob, shape) if blob is not None else None
                row["sr_patch"] = decode_map(patch, patch_shape) if patch is not None else None
            yield row

    def adopt(self, units: list[tuple]) -> int:
        """Give stored units this run's keys and paths where they hold the same unit.

        ``units``: per unit of the work set, (key, legacy key, image, model,
        params_hash, image_sha, model_sha). A stored unit under the legacy
        key (stores keyed by absolute paths), or, in a store moved from
        another machine, one with the same hashes, parameters and image file
        name, is renamed to the key, rows included, so it is neither
        recomputed nor counted twice; a unit under its own key takes the
        paths it has now. Returns how many were renamed or moved.
        """
        stored = {key: (image, model, p, i, m) for key, image, model, p, i, m in self.conn.execute(
            "SELECT unit_key, image, model, params_hash, image_sha, model_sha FROM units")}
        by_content = {(i, m, p, Path(image).name): key for key, (image, model, p, i, m) in stored.items()
                      if i is not None and m is not None}
        changed = 0
        with self.conn:
            for key, legacy, image, model, params_hash, image_sha, model_sha in units:
                if key in stored:
                    if stored[key][:2] != (image, model):
                        self.conn.execute("UPDATE units SET image = ?, model = ? WHERE unit_key = ?", (image, model, key))
                        self.conn.execute("UPDATE results SET image = ?, model = ? WHERE unit_key = ?",
                                          (image, model, key))
                        changed += 1
                    continue
                old = legacy if legacy in stored else by_content.get((image_sha, model_sha, params_hash,
                                                                      Path(image).name))
                if old is None or old == key:
                    continue
                self.conn.execute("UPDATE units SET unit_key = ?, image = ?, model = ? WHERE unit_key = ?",
                                  (key, image, model, old))
                self.conn.execute("UPDATE results SET key = ? || substr(key, ?), unit_key = ?, image = ?, model = ? "
                                  "WHERE unit_key = ?", (key, len(old) + 1, key, image, model, old))
                stored[key] = stored.pop(old)
                changed += 1
        return changed

    def superseded(self, units: list[tuple[str, str, str, str]]) -> dict[str, str]:
        """Of ``units`` (key, image, model, params_hash), those whose image and model paths and
        parameters have a stored unit under another key (the file at that path changed since):
        key -> the stored key, whose rows the new unit replaces."""
        by_place = {(image, model, p): key for key, image, model, p in self.conn.execute(
            "SELECT unit_key, image, model, params_hash FROM units")}
        out = {}
        for key, image, model, params_hash in units:
            old = by_place.get((image, model, params_hash))
            if old is not None and old != key:
                out[key] = old
        return out

    def failed_units(self, keys: set[str]) -> dict[str, tuple[str, str, str | None]]:
        """Of ``keys``, the units stored as failed: key -> (image, model label, error)."""
        out = {}
        for key, image, model, error in self.conn.execute(
                "SELECT unit_key, image, COALESCE(label, model), error FROM units WHERE status != 'ok'"):
            if key in keys:
                out[key] = (image, model, error)
        return out

    def counts(self) -> dict[str, int]:
        return {status: n for status, n in self.conn.execute("SELECT status, COUNT(*) FROM results GROUP BY status")}
