"""Benchmarks run with ``python -m pytest benchmarks`` (pytest-benchmark).

Speed targets live here and in closing notes, never as asserts in tests/.
``LAMFAST_BENCH_THREADS`` sets torch's thread count (default: all cores);
``LAMFAST_BENCH_DEVICE=cuda`` runs the op and LAM benchmarks on the GPU.
"""
from __future__ import annotations

import os

import pytest
import torch

import lamfast

if "LAMFAST_BENCH_THREADS" in os.environ:
    torch.set_num_threads(int(os.environ["LAMFAST_BENCH_THREADS"]))

DEVICE = torch.device(os.environ.get("LAMFAST_BENCH_DEVICE", "cpu"))


def synced(fn):
    """``fn`` followed by a device synchronisation, so GPU timings are real."""
    if DEVICE.type != "cuda":
        return fn

    def run(*args, **kwargs):
        out = fn(*args, **kwargs)
        torch.cuda.synchronize(DEVICE)
        return out

    return run


requires_ext = pytest.mark.skipif(not lamfast.ext_available(), reason=f"extension not in use: {lamfast.ext_status()}")


@pytest.fixture(autouse=True)
def _record_threads(benchmark):
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    benchmark.extra_info["extension"] = lamfast.ext_available()
    benchmark.extra_info["device"] = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else "cpu"


def pytest_terminal_summary(terminalreporter):
    from interleaved import REPORTS

    for title, rows in REPORTS:
        terminalreporter.section(f"interleaved: {title}")
        for row in rows:
            terminalreporter.write_line(row)
