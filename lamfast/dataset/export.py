"""``lamfast export``: the store's rows as CSV or Parquet (without the maps)."""
from __future__ import annotations

import csv
from pathlib import Path

from lamfast.dataset.store import COLUMNS, ResultStore

EXPORT_COLUMNS = [c for c in COLUMNS if c not in ("attribution", "attribution_shape")]


def export(store: str | Path, out: str | Path) -> int:
    """Write every row to ``out`` (.csv or .parquet); returns the row count."""
    out = Path(out)
    if not Path(store).is_file():
        raise ValueError(f"store not found: {store}")
    with ResultStore(store) as db:
        rows = list(db.rows())
    if out.suffix == ".csv":
        with open(out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    elif out.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError("Parquet export needs pyarrow: pip install pyarrow") from None
        table = pa.table({c: [r[c] for r in rows] for c in EXPORT_COLUMNS})
        pq.write_table(table, out)
    else:
        raise ValueError(f"export format is chosen by the suffix: .csv or .parquet, got {out.name!r}")
    return len(rows)
