"""Headless Chromium for the page tests: the report's and the explorer's pages test themselves (``#selftest``)."""
from __future__ import annotations

import html
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    """Chromium's path; the test skips where it is not installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed here (scripts/test.sh installs Debian's chromium where apt-get can)")
    return browser


def run(*args: str, timeout: int = 180) -> str:
    """Chromium with the test flags and a fresh profile; its stdout."""
    return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={tempfile.mkdtemp()}", *args], capture_output=True,
                          text=True, timeout=timeout).stdout


def selftest(index: Path, budget_ms: int = 10000):
    """Open ``index#selftest``: the page's script acts on itself and writes what it saw, as JSON, into
    ``<pre id="selftest">``; that JSON."""
    dom = run(f"--virtual-time-budget={budget_ms}", "--dump-dom", index.as_uri() + "#selftest")
    assert '<pre id="selftest">' in dom, dom[-2000:]
    start = dom.rindex('<pre id="selftest">') + len('<pre id="selftest">')
    return json.loads(html.unescape(dom[start:dom.index("</pre>", start)]))


def screenshot(page: str, out: Path, size: str = "1200,1000", budget_ms: int = 5000) -> Path:
    """A PNG of ``page`` (a URI) at ``size``."""
    run(f"--window-size={size}", f"--virtual-time-budget={budget_ms}", f"--screenshot={out}", page, timeout=120)
    return out


def is_sorted(values: list[str], ascending: bool) -> bool:
    """Whether a column's texts are sorted, as numbers where they all are, else as text; empty cells (not
    measured) last, whichever the direction."""
    filled = [v for v in values if v != ""]
    if values[:len(filled)] != filled:
        return False
    values = filled

    def key(v):
        try:
            return (0, float(v), "")
        except ValueError:
            return (1, 0.0, v)

    keys = [key(v) for v in values]
    if not all(k[0] == 0 for k in keys):
        return all((a <= b) if ascending else (a >= b) for a, b in zip(values, values[1:])) or \
            all((a.lower() <= b.lower()) if ascending else (a.lower() >= b.lower()) for a, b in zip(values, values[1:]))
    nums = [k[1] for k in keys]
    return all((a <= b) if ascending else (a >= b) for a, b in zip(nums, nums[1:]))
