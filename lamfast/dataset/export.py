"""``lamfast export``: the store's rows as CSV or Parquet, optionally with the maps.

Columns have fixed types, so an export of a store whose every row failed
(all ``di`` empty) still reads back as numbers where numbers belong. With
``maps=True`` the attribution maps ([3,H,W] float32; a CEM row's effect map [blocks_h, blocks_w] in
dB, its summary in column ``cem``) go along: as a list
column plus its shape in Parquet, or next to a CSV as ``<name>.maps.npz``
(array ``keys`` names the rows; array ``m<i>`` is the map of ``keys[i]``).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from lamfast.dataset.store import COLUMNS, ResultStore

from lamfast.errors import LamfastError
from lamfast.outputs import check_output_file

# ``model`` is the model's label; ``model_spec`` the checkpoint spec it was loaded from.
EXPORT_COLUMNS = [c for c in COLUMNS if c not in ("attribution", "attribution_shape", "label", "sr_patch",
                                                           "sr_patch_shape")] + ["model_spec"]
INT_COLUMNS = {"h", "w", "size", "nan_steps", "scale"}
FLOAT_COLUMNS = {"di", "gini", "di_fold_half", "completeness", "seconds", "psnr", "ssim"}


def _arrow_type(pa, column: str):
    if column in INT_COLUMNS:
        return pa.int64()
    if column in FLOAT_COLUMNS:
        return pa.float64()
    return pa.string()


def export(store: str | Path, out: str | Path, maps: bool = False) -> int:
    """Write every row to ``out`` (.csv or .parquet); returns the row count.

    Args:
        maps: also write the attribution maps (see the module docstring).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from lamfast import LAMParams
        >>> from lamfast.dataset import RunConfig, export, run
        >>> work = Path(tempfile.mkdtemp())
        >>> _ = run(["bundled"], ["bundled"], work / "s.sqlite", RunConfig(windows="top:3:16", lam=LAMParams(fold=2)), progress=False)
        >>> export(work / "s.sqlite", work / "rows.csv")  # one row per window
        3
        >>> header = (work / "rows.csv").read_text().splitlines()[0].split(",")
        >>> [column for column in header if column in ("image", "model", "status", "di", "gini")]
        ['image', 'model', 'status', 'di', 'gini']
    """
    out = Path(out)
    if not Path(store).is_file():
        raise LamfastError(f"store not found: {store}")
    if out.suffix not in (".csv", ".parquet"):
        raise LamfastError(f"export format is chosen by the suffix: .csv or .parquet, got {out.name!r}")
    check_output_file(out)
    with ResultStore(store) as db:
        rows = list(db.rows(with_maps=maps, method=None))  # LAM and CEM rows (column ``method``)
    for r in rows:  # JSON, as the store holds it (and as the video and timings columns are written)
        r["cem"] = json.dumps(r["cem"]) if r["cem"] is not None else None
    if out.suffix == ".csv":
        with open(out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        if maps:
            arrays = {"keys": np.array([r["key"] for r in rows if r.get("attribution") is not None])}
            for i, r in enumerate(r for r in rows if r.get("attribution") is not None):
                arrays[f"m{i}"] = r["attribution"]
            np.savez_compressed(out.with_suffix(".maps.npz"), **arrays)
        return len(rows)
    from lamfast.optional import import_optional

    pa = import_optional("pyarrow", "Parquet export")
    pq = import_optional("pyarrow.parquet", "Parquet export")
    fields = [pa.field(c, _arrow_type(pa, c)) for c in EXPORT_COLUMNS]
    columns = {c: [r[c] for r in rows] for c in EXPORT_COLUMNS}
    if maps:
        fields += [pa.field("attribution", pa.list_(pa.float32())), pa.field("attribution_shape", pa.list_(pa.int32()))]
        columns["attribution"] = [None if r["attribution"] is None else r["attribution"].ravel() for r in rows]
        columns["attribution_shape"] = [None if r["attribution"] is None else list(r["attribution"].shape)
                                        for r in rows]
    schema = pa.schema(fields)
    pq.write_table(pa.table({f.name: pa.array(columns[f.name], type=f.type) for f in fields}, schema=schema), out)
    return len(rows)
