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

# The store's layout. A store of another version is refused in one line:
# results of another layout are not read as if they were these. Version 3
# lacks version 4's two convergence columns, and version 4 lacks version 5's
# method and CEM columns, so both are upgraded in place (their rows keep NULL
# there: not measured, and NULL's method is LAM, the one they could hold).
SCHEMA_VERSION = 5
PLANNED_SCHEMA = """
CREATE TABLE IF NOT EXISTS planned (
    unit_key TEXT PRIMARY KEY,
    image TEXT NOT NULL,
    model TEXT NOT NULL,
    label TEXT,
    params_hash TEXT NOT NULL,
    planned_at REAL NOT NULL
);
"""
_TO_5 = ("ALTER TABLE results ADD COLUMN method TEXT", "ALTER TABLE results ADD COLUMN cem TEXT")
UPGRADES = {3: ("ALTER TABLE results ADD COLUMN di_fold_half REAL", "ALTER TABLE results ADD COLUMN completeness REAL",
                PLANNED_SCHEMA.strip(), *_TO_5),
            4: _TO_5}
# What a row's ``method`` column holds: "lam", or "cem" (causal effect maps, lamfast.cem). NULL is "lam".
METHODS = ("lam", "cem")
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
    finished_at REAL NOT NULL,
    image_sha TEXT,
    model_sha TEXT,
    label TEXT,
    model_notes TEXT
);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    unit_key TEXT NOT NULL,
    image TEXT NOT NULL,
    model TEXT NOT NULL,
    label TEXT,
    h INTEGER NOT NULL,
    w INTEGER NOT NULL,
    size INTEGER NOT NULL,
    params_hash TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    di REAL,
    gini REAL,
    di_fold_half REAL,
    completeness REAL,
    nan_steps INTEGER,
    scale INTEGER,
    lr_size TEXT,
    psnr REAL,
    ssim REAL,
    attribution BLOB,
    attribution_shape TEXT,
    sr_patch BLOB,
    sr_patch_shape TEXT,
    video TEXT,
    seconds REAL,
    timings TEXT,
    method TEXT,
    cem TEXT
);
CREATE INDEX IF NOT EXISTS results_unit ON results(unit_key);
"""
COLUMNS = ("key", "unit_key", "image", "model", "label", "h", "w", "size", "params_hash", "params", "status", "error",
           "di", "gini", "di_fold_half", "completeness", "nan_steps", "scale", "lr_size", "psnr", "ssim", "attribution", "attribution_shape", "sr_patch",
           "sr_patch_shape", "video", "seconds", "timings", "method", "cem")

def encode_map(a: np.ndarray) -> tuple[bytes, str]:
    """Lossless blob of a float32 array and its shape."""
    a = np.ascontiguousarray(a, dtype="<f4")
    return zlib.compress(a.tobytes(), 6), json.dumps(list(a.shape))


def decode_map(blob: bytes, shape: str) -> np.ndarray:
    """A stored map back as a float32 array: the inverse of :func:`encode_map` (zlib of little-endian float32).

    Example:
        >>> import numpy as np
        >>> from lamfast.dataset.store import decode_map, encode_map
        >>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
        >>> np.array_equal(decode_map(*encode_map(a)), a)  # lossless
        True
    """
    return np.frombuffer(zlib.decompress(blob), dtype="<f4").reshape(json.loads(shape)).copy()


@dataclass
class ResultRow:
    """One window of one unit, as the results table holds it (one builder: :meth:`ok` / :meth:`failed`).

    ``h = w = size = -1`` is a unit that failed before any window (``key`` ends in ``|*``).
    ``attribution`` and ``sr_patch`` are float32 arrays, stored losslessly; ``video`` is a clip
    window's frame, frame shares and per-frame DI; ``timings`` says which path ran. A CEM row
    (``method="cem"``) holds the window's effect map [blocks_h, blocks_w] in dB as ``attribution``
    and its summary (ROI PSNR, counts, range, forwards, path) as ``cem``; its DI columns are empty.
    """

    key: str
    unit_key: str
    image: str
    model: str
    label: str | None
    h: int
    w: int
    size: int
    params_hash: str
    params: str
    status: str
    error: str | None = None
    di: float | None = None
    gini: float | None = None
    di_fold_half: float | None = None
    completeness: float | None = None
    nan_steps: int | None = None
    scale: int | None = None
    lr_size: str | None = None
    psnr: float | None = None
    ssim: float | None = None
    attribution: Any = None
    sr_patch: Any = None
    video: dict | None = None
    seconds: float | None = None
    timings: dict | None = None
    method: str = "lam"
    cem: dict | None = None

    @classmethod
    def ok(cls, base: dict, window: tuple[int, int, int], result, **quality) -> "ResultRow":
        """The row of a LAM result (a :class:`lamfast.LAMResult`, or a clip's VideoLAMResult)."""
        h, w, s = window
        video = None
        if getattr(result, "frame_share", None) is not None:
            video = {"frame": result.frame, "frame_share": [float(v) for v in result.frame_share],
                     "di_per_frame": [float(v) for v in result.di_per_frame]}
        return cls(key=f"{base['unit_key']}|{h},{w},{s}", h=h, w=w, size=s, status="ok", di=result.di,
                   gini=result.gini, di_fold_half=result.di_fold_half, completeness=result.completeness, nan_steps=result.nan_steps, scale=result.scale,
                   attribution=result.attribution.detach().float().cpu().numpy(),
                   sr_patch=result.sr[..., h:h + s, w:w + s].detach().float().cpu().numpy(), video=video,
                   seconds=result.timings["total"], timings={**result.timings, "crop": result.crop.summary()},
                   **base, **quality)

    @classmethod
    def cem_ok(cls, base: dict, window: tuple[int, int, int], result, **quality) -> "ResultRow":
        """The row of a CEM result (a :class:`lamfast.CEMResult`) of the window as its ROI."""
        h, w, s = window
        summary = result.summary()
        return cls(key=f"{base['unit_key']}|{h},{w},{s}", h=h, w=w, size=s, status="ok", scale=result.scale,
                   attribution=result.effect.astype("float32"), seconds=result.timings["total"],
                   timings={**result.timings, "path": result.path}, method="cem",
                   cem={k: summary[k] for k in ("psnr", "counts", "official_counts", "effect_range", "effect_span",
                                                "forwards", "official_forwards", "block", "box", "path", "resize")},
                   **base, **quality)

    @classmethod
    def failed(cls, base: dict, window: tuple[int, int, int] | None, error: str, **quality) -> "ResultRow":
        """The row of a window that failed, or (``window`` None) of a unit that failed before its windows."""
        h, w, s = window or (-1, -1, -1)
        key = f"{base['unit_key']}|{h},{w},{s}" if window else f"{base['unit_key']}|*"
        return cls(key=key, h=h, w=w, size=s, status="failed", error=error, **base, **quality)

    def values(self) -> tuple:
        """The row's columns in :data:`COLUMNS` order, arrays encoded."""
        out = dict(self.__dict__)
        out["attribution"], out["attribution_shape"] = (encode_map(self.attribution) if self.attribution is not None
                                                        else (None, None))
        out["sr_patch"], out["sr_patch_shape"] = encode_map(self.sr_patch) if self.sr_patch is not None else (None, None)
        out["video"] = json.dumps(self.video) if self.video is not None else None
        out["timings"] = json.dumps(self.timings) if self.timings is not None else None
        out["cem"] = json.dumps(self.cem) if self.cem is not None else None
        return tuple(out[c] for c in COLUMNS)


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
    rows: list[ResultRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for the user, not stored (e.g. fewer top:K windows fitted)
    label: str | None = None  # the model's name in reports and exports
    model_notes: list[str] = field(default_factory=list)  # how the loader read the model, stored with the unit


@dataclass(frozen=True)
class StoreStatus:
    """Whether a store holds all the work its runs were asked for, and whether one is running now.

    Example:
        >>> from lamfast.dataset.store import StoreStatus
        >>> StoreStatus({"A": 5, "B": 5}, {"A": 5, "B": 2}, live_leases=1).text
        'incomplete: 7 of 10 units (A 5 of 5, B 2 of 5); in progress: a run holds 1 unit now'
        >>> StoreStatus({"A": 5}, {"A": 5}, 0).complete
        True
    """

    planned: dict[str, int]  # model label -> units asked for
    finished: dict[str, int]  # model label -> of those, units finished (ok or failed)
    live_leases: int = 0

    @property
    def in_progress(self) -> bool:
        return self.live_leases > 0

    @property
    def missing(self) -> int:
        return sum(self.planned.values()) - sum(self.finished.values())

    @property
    def complete(self) -> bool:
        return self.missing == 0 and not self.in_progress

    @property
    def text(self) -> str:
        """One line: "" for a complete store, else what is missing and whether a run is on."""
        parts = []
        if self.missing:
            per = ", ".join(f"{m} {self.finished[m]} of {self.planned[m]}" for m in sorted(self.planned))
            parts.append(f"incomplete: {sum(self.finished.values())} of {sum(self.planned.values())} units ({per})")
        if self.in_progress:
            parts.append(f"in progress: a run holds {self.live_leases} unit{'s' if self.live_leases != 1 else ''} now")
        return "; ".join(parts)


def _statements(script: str) -> list[str]:
    """The SQL statements of ``script``, one each."""
    out, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    return out + ([pending.strip()] if pending.strip() else [])


OPEN_TIMEOUT_S = 60.0


def enable_wal(conn: sqlite3.Connection, timeout_s: float = OPEN_TIMEOUT_S) -> None:
    """Switch ``conn``'s database to WAL, waiting for other connections doing the same.

    SQLite answers "database is locked" at once, without its busy handler, when two connections
    switch a new database's journal mode together (each holds the shared lock the other must
    wait out), so runs that open one new store at once retry here until ``timeout_s``.
    """
    deadline, pause = time.monotonic() + timeout_s, 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def check_version(conn: sqlite3.Connection, path: Path) -> None:
    """LamfastError (one line) unless the store at ``conn`` has this lamfast's layout (:data:`SCHEMA_VERSION`)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise LamfastError(f"{path} is a lamfast results store of layout version {version}; this lamfast reads "
                           f"version {SCHEMA_VERSION} only (rerun into a new store)", param="store")


class ResultStore:
    """SQLite results store (WAL, one transaction per unit) of one layout version (:data:`SCHEMA_VERSION`).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from lamfast import LAMParams
        >>> from lamfast.dataset import ResultStore, RunConfig, run
        >>> path = Path(tempfile.mkdtemp()) / "s.sqlite"
        >>> _ = run(["bundled"], ["bundled"], path, RunConfig(windows="list:60,60:16", lam=LAMParams(fold=2)), progress=False)
        >>> with ResultStore(path) as db:
        ...     rows = list(db.rows(with_maps=True))
        >>> len(rows), rows[0]["status"], rows[0]["attribution"].shape  # the LR attribution [3,64,64]
        (1, 'ok', (3, 64, 64))
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=OPEN_TIMEOUT_S)
            enable_wal(self.conn)
            self.conn.execute("PRAGMA synchronous=NORMAL")
            # The tables and the version in one write transaction: runs that open a new store
            # together see either nothing or all of it.
            self.conn.execute("BEGIN IMMEDIATE")
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables <= {"leases"} and self.conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                # a new store (a lease table alone is what a lease reader of an older lamfast leaves)
                # statement by statement: executescript would commit the transaction first, and a run
                # opening the store meanwhile would see the tables without their version
                for statement in _statements(SCHEMA + PLANNED_SCHEMA + LEASE_SCHEMA):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            else:
                version = self.conn.execute("PRAGMA user_version").fetchone()[0]
                if version in UPGRADES:
                    for statement in UPGRADES[version]:
                        self.conn.execute(statement)
                    self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.conn.commit()
            check_version(self.conn, self.path)
        except sqlite3.DatabaseError as exc:
            raise LamfastError(f"{self.path} is not a lamfast results store ({exc})", param="store") from None
        except LamfastError:
            self.conn.close()
            raise

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
            if replaces is not None:  # the unit it replaces is no longer work to do
                self.conn.execute("DELETE FROM planned WHERE unit_key = ?", (replaces,))
            # The unit's lease ends with its commit (whoever held it: the result is the same).
            self.conn.execute("DELETE FROM leases WHERE unit_key = ?", (unit.unit_key,))
            self.conn.executemany(
                f"INSERT OR REPLACE INTO results ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                [row.values() for row in unit.rows],
            )
            self.conn.execute(
                "INSERT OR REPLACE INTO units (unit_key, image, model, params_hash, status, error, windows, seconds, "
                "finished_at, image_sha, model_sha, label, model_notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (unit.unit_key, unit.image, unit.model, unit.params_hash, unit.status, unit.error,
                 sum(1 for r in unit.rows if r.status == "ok"), unit.seconds, time.time(), image_sha, model_sha,
                 unit.label, json.dumps(unit.model_notes)),
            )

    def rows(self, with_maps: bool = False, method: str | None = "lam") -> Iterator[dict[str, Any]]:
        """Every result row of ``method`` (``"lam"``, ``"cem"``; None: all) as a dict (attribution decoded to
        ndarray with ``with_maps``; a CEM row's ``cem`` summary decoded)."""
        where = "" if method is None else "WHERE COALESCE(method, 'lam') = ? "
        cur = self.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM results {where}ORDER BY image, model, h, w, size, key",
                                () if method is None else (method,))
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
            row["method"] = row["method"] or "lam"
            if row["cem"] is not None:
                row["cem"] = json.loads(row["cem"])
            if with_maps:
                row["attribution"] = decode_map(blob, shape) if blob is not None else None
                row["sr_patch"] = decode_map(patch, patch_shape) if patch is not None else None
            yield row

    def relocate(self, units: list[tuple[str, str, str]]) -> int:
        """Give stored units the paths they have now: ``[(unit_key, image, model)]``. Keys hold relative
        names and content hashes, so a store moved to another machine, or a dataset mounted elsewhere,
        holds the same units at other paths (which the report reads the images from). Returns how many
        moved."""
        stored = {key: (image, model) for key, image, model in
                  self.conn.execute("SELECT unit_key, image, model FROM units")}
        moved = [(image, model, key) for key, image, model in units if key in stored and stored[key] != (image, model)]
        with self.conn:
            for image, model, key in moved:
                self.conn.execute("UPDATE units SET image = ?, model = ? WHERE unit_key = ?", (image, model, key))
                self.conn.execute("UPDATE results SET image = ?, model = ? WHERE unit_key = ?", (image, model, key))
        return len(moved)

    def plan(self, units: list[tuple[str, str, str, str | None, str]], replaced: dict[str, str] | None = None) -> None:
        """Record the work a run was asked for, before it computes: ``[(unit_key, image, model, label,
        params_hash)]``; ``replaced``: new key -> the stored key it supersedes (no longer planned). A
        report of the store then knows what is missing (:meth:`status`)."""
        now = time.time()
        with self.conn:
            for old in (replaced or {}).values():
                self.conn.execute("DELETE FROM planned WHERE unit_key = ?", (old,))
            self.conn.executemany(
                "INSERT INTO planned (unit_key, image, model, label, params_hash, planned_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(unit_key) DO UPDATE SET image = excluded.image, model = excluded.model, "
                "label = excluded.label", [(*u, now) for u in units])

    def status(self) -> "StoreStatus":
        """How complete the store is: per model label, units planned and units finished (ok or failed),
        and the live leases (a run is writing it now)."""
        planned: dict[str, int] = {}
        finished: dict[str, int] = {}
        for label, n_planned, n_done in self.conn.execute(
                "SELECT COALESCE(p.label, p.model), COUNT(*), COUNT(u.unit_key) FROM planned p "
                "LEFT JOIN units u ON u.unit_key = p.unit_key GROUP BY COALESCE(p.label, p.model)"):
            planned[label], finished[label] = n_planned, n_done
        live = self.conn.execute("SELECT COUNT(*) FROM leases WHERE expires > ?", (time.time(),)).fetchone()[0]
        return StoreStatus(planned, finished, live)

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
