"""Combine results stores (one per node, or per shard) into one.

Where SQLite's locks cannot be trusted (a network file system), each node
runs into its own store and the stores are merged afterwards. Units are
matched by key (relative image name, content hashes, parameter hash), so
the same unit computed on two nodes is one unit. Two stores that hold
different numbers for one unit are a conflict, and nothing is written.
"""
from __future__ import annotations

import json
import math
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lamfast.dataset.store import COLUMNS, ResultStore, check_version, decode_map
from lamfast.errors import LamfastError
from lamfast.outputs import check_output_file

UNIT_COLUMNS = ("unit_key", "image", "model", "params_hash", "status", "error", "windows", "seconds", "finished_at",
                "image_sha", "model_sha", "label", "model_notes")
# What a result is: rows of one key that differ here are different results.
EXACT = ("status", "nan_steps", "scale", "lr_size")
CLOSE = ("di", "gini", "di_fold_half", "completeness", "psnr", "ssim")


@dataclass
class MergeSummary:
    """What :func:`merge` did: units new to the output, already there, failures replaced, rows written.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from lamfast import LAMParams
        >>> from lamfast.dataset import RunConfig, merge, run
        >>> work, config = Path(tempfile.mkdtemp()), RunConfig(windows="top:2:16", lam=LAMParams(fold=2))
        >>> for part in ("a", "b"):  # two workers' stores with the same unit
        ...     _ = run(["bundled"], ["bundled"], work / f"{part}.sqlite", config, progress=False)
        >>> s = merge(work / "all.sqlite", [work / "a.sqlite", work / "b.sqlite"])
        >>> s.units_added, s.units_same, s.rows_written  # b's copy agrees with a's: nothing written twice
        (1, 1, 2)
    """
    units_added: int = 0  # new to the output
    units_same: int = 0  # already there (or in an earlier store) with the same results
    units_replaced: int = 0  # a failed unit replaced by a success from another store
    rows_written: int = 0
    sources: list[str] = field(default_factory=list)


class _Source:
    """A store opened read-only; it must have this lamfast's layout (:data:`lamfast.dataset.store.SCHEMA_VERSION`)."""

    def __init__(self, path: Path):
        if not path.is_file():
            raise LamfastError(f"{path}: no such results store", param="stores")
        try:
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"units", "results"} <= tables:
                raise sqlite3.DatabaseError("it has no units and results tables")
            check_version(self.conn, path)
            live = self.conn.execute("SELECT COUNT(*) FROM leases WHERE expires > ?", (time.time(),)).fetchone()[0] \
                if "leases" in tables else 0
        except sqlite3.DatabaseError as exc:
            raise LamfastError(f"{path} is not a lamfast results store ({exc})", param="stores") from None
        if live:
            raise LamfastError(f"{path} has {live} live leases: a run is writing it; merge it when the run ends",
                               param="stores")
        self.path = path

    def _select(self, table: str, cols: tuple[str, ...], where: str = "", args=()) -> list[dict]:
        cur = self.conn.execute(f"SELECT {', '.join(cols)} FROM {table} {where}", args)
        return [dict(zip(cols, r)) for r in cur]

    def units(self) -> list[dict]:
        return self._select("units", UNIT_COLUMNS, "ORDER BY unit_key")

    def rows(self, unit_key: str) -> list[dict]:
        return self._select("results", COLUMNS, "WHERE unit_key = ? ORDER BY key", (unit_key,))


def _close(a, b, rtol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= rtol * max(abs(a), abs(b))


def _numbers(text: str | None) -> np.ndarray:
    if text is None:
        return np.zeros(0)
    value = json.loads(text)
    flat = []
    for v in value.values() if isinstance(value, dict) else [value]:
        flat.extend(np.ravel(np.asarray(v, dtype=float)).tolist())
    return np.asarray(flat)


def row_difference(a: dict, b: dict, rtol: float) -> str | None:
    """Why two stored rows of one key are different results, or None when they agree
    (numbers to ``rtol`` relative, maps to ``rtol`` of their largest magnitude)."""
    for col in EXACT:
        if a.get(col) != b.get(col):
            return f"{col} {a.get(col)!r} against {b.get(col)!r}"
    for col in CLOSE:
        if not _close(a.get(col), b.get(col), rtol):
            return f"{col} {a.get(col)!r} against {b.get(col)!r}"
    va, vb = _numbers(a.get("video")), _numbers(b.get("video"))
    if va.shape != vb.shape or not np.allclose(va, vb, rtol=rtol, atol=0):
        return "the clip's per-frame DI"
    ma, mb = a.get("attribution"), b.get("attribution")
    if (ma is None) != (mb is None):
        return "one has an attribution map, the other not"
    if ma is not None:
        xa, xb = decode_map(ma, a["attribution_shape"]), decode_map(mb, b["attribution_shape"])
        if xa.shape != xb.shape:
            return f"attribution shape {xa.shape} against {xb.shape}"
        scale = float(np.abs(xa).max(initial=0.0))
        if not np.allclose(xa, xb, rtol=0, atol=rtol * scale):
            return f"attribution maps differ by up to {float(np.abs(xa - xb).max()):.3g} (largest {scale:.3g})"
    return None


def unit_difference(rows_a: list[dict], rows_b: list[dict], rtol: float) -> str | None:
    keys_a, keys_b = [r["key"] for r in rows_a], [r["key"] for r in rows_b]
    if keys_a != keys_b:
        return f"different windows ({len(keys_a)} rows against {len(keys_b)})"
    for a, b in zip(rows_a, rows_b):
        why = row_difference(a, b, rtol)
        if why:
            return f"window {a['h']},{a['w']},{a['size']}: {why}"
    return None


def merge(output: str | Path, stores: list[str | Path], rtol: float = 1e-6) -> MergeSummary:
    """Combine ``stores`` into ``output`` (created if missing; its own units count as the first store).

    A unit found in several stores is written once. A success replaces a
    failure of the same unit; two failures keep the first. Two successes
    must agree: same windows, same status, NaN steps and scale, DI, Gini,
    PSNR and SSIM within ``rtol`` relative and maps within ``rtol`` of their
    largest magnitude (runs on different CPUs differ in the last bits).
    Otherwise it raises :class:`~lamfast.errors.LamfastError` naming the
    first conflict, and writes nothing. A store with live leases (a run is
    writing it) is refused.

    Args:
        output: the store to write.
        stores: the stores to read (read-only); not ``output`` itself.
        rtol: relative tolerance for two copies of one result.
    Returns:
        MergeSummary: units added, already there, failures replaced, rows written.

    Example:
        >>> import os, tempfile
        >>> from lamfast import LAMParams
        >>> from lamfast.dataset import RunConfig, merge, run
        >>> one = os.path.join(tempfile.mkdtemp(), "one.sqlite")
        >>> _ = run(["bundled"], ["bundled"], one, RunConfig(windows="top:2:16", lam=LAMParams(fold=2)), progress=False)
        >>> merge(one.replace("one", "all"), [one]).units_added
        1
    """
    if not stores:
        raise LamfastError("no stores to merge", param="stores")
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not rtol >= 0:
        raise LamfastError(f"rtol must be a number >= 0, got {rtol!r}", param="rtol")
    out_path = check_output_file(output)
    paths = [Path(s) for s in stores]
    for p in paths:
        if out_path.exists() and p.exists() and p.resolve() == out_path.resolve():
            raise LamfastError(f"{p} is the output store; give it once, as the output", param="stores")
    sources = [_Source(p) for p in paths]  # every source readable before the output is touched
    summary = MergeSummary(sources=[str(p) for p in paths])
    # Plan on the output read as it is: a conflict is found before anything, even the file, is written.
    out_view = _Source(out_path) if out_path.exists() else None
    # key -> (the store it comes from: None = the output itself; its unit row)
    have: dict[str, tuple[_Source | None, dict]] = {u["unit_key"]: (None, u) for u in
                                                     (out_view.units() if out_view else [])}
    conflicts: list[str] = []
    for src in sources:
        for unit in src.units():
            key = unit["unit_key"]
            if key not in have:
                have[key] = (src, unit)
                continue
            where, old = have[key]
            if unit["status"] != "ok":
                summary.units_same += old["status"] != "ok"
                continue  # a failure never replaces what is there
            if old["status"] != "ok":
                have[key] = (src, {**unit, "_replaces": True})
                continue
            why = unit_difference((where or out_view).rows(key), src.rows(key), rtol)
            if why:
                conflicts.append(f"{Path(unit['image']).name} × {unit['label'] or unit['model']}: {why} "
                                 f"({where.path if where else out_path} against {src.path})")
            else:
                summary.units_same += 1
    if out_view is not None:
        out_view.conn.close()
    if conflicts:
        for src in sources:
            src.conn.close()
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise LamfastError(f"{len(conflicts)} units differ between the stores, nothing was written: "
                           f"{conflicts[0]}{more}", param="stores")
    with ResultStore(out_path) as db, db.conn:
        for key, (where, unit) in have.items():
            if where is None:
                continue
            rows = where.rows(key)
            db.conn.execute("DELETE FROM results WHERE unit_key = ?", (key,))
            db.conn.execute("DELETE FROM units WHERE unit_key = ?", (key,))
            db.conn.executemany(
                f"INSERT INTO results ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                [tuple(r[c] for c in COLUMNS) for r in rows])
            db.conn.execute(f"INSERT INTO units ({', '.join(UNIT_COLUMNS)}) "
                            f"VALUES ({', '.join('?' * len(UNIT_COLUMNS))})", tuple(unit[c] for c in UNIT_COLUMNS))
            summary.rows_written += len(rows)
            if unit.get("_replaces"):
                summary.units_replaced += 1
            else:
                summary.units_added += 1
        # the work each source was asked for: the merged store knows what its shards left undone
        for src in sources:
            db.conn.executemany("INSERT OR IGNORE INTO planned (unit_key, image, model, label, params_hash, planned_at) "
                                "VALUES (?, ?, ?, ?, ?, ?)", src.conn.execute(
                                    "SELECT unit_key, image, model, label, params_hash, planned_at FROM planned"))
    for src in sources:
        src.conn.close()
    return summary


__all__ = ["MergeSummary", "merge", "row_difference", "unit_difference"]
