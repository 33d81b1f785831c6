"""Dataset-scale LAM: :func:`run` into a resumable SQLite store (any number of runs may share one,
:mod:`lamfast.dataset.leases`), :func:`merge` of stores, :func:`export`, :func:`write_report`.

Importing this package imports no optional dependency; Ray and pyarrow are
imported only by the engine or export that needs them.
"""
from lamfast.dataset.export import export
from lamfast.dataset.merge import MergeSummary, merge
from lamfast.dataset.report import write_report
from lamfast.dataset.runner import RunConfig, RunSummary, discover_images, run
from lamfast.dataset.store import ResultStore, decode_map

__all__ = ["MergeSummary", "ResultStore", "RunConfig", "RunSummary", "decode_map",
           "discover_images", "export", "merge", "run", "write_report"]
