"""Benchmarks run with ``python -m pytest benchmarks`` (pytest-benchmark).

Speed targets live here and in closing notes, never as asserts in tests/.
``LAMFAST_BENCH_THREADS`` sets torch's thread count (default: all cores).
"""
from __future__ import annotations

import os

import pytest
import torch

import lamfast

if "LAMFAST_BENCH_THREADS" in os.environ:
    torch.set_num_threads(int(os.environ["LAMFAST_BENCH_THREADS"]))

requires_ext = pytest.mark.skipif(not lamfast.ext_available(), reason=f"extension not in use: {lamfast.ext_status()}")


@pytest.fixture(autouse=True)
def _record_threads(benchmark):
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    benchmark.extra_info["extension"] = lamfast.ext_available()
