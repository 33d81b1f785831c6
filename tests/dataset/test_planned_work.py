"""The store knows the work it was asked for: a report, an export or an explorer page of a stopped or running
run says "incomplete: X of Y units" (per model) or "in progress", on the page, on stdout and in the LaTeX
captions, and says nothing for a complete store."""
from __future__ import annotations

import html
import os
import socket
import time

import pytest

import lamfast
from lamfast.cli import main
from lamfast.dataset import ResultStore, RunConfig, run, write_report
from lamfast.dataset.worker import UnitWorker

from conftest import astronaut_images

CONFIG = RunConfig(windows="grid:32", lam=lamfast.LAMParams(fold=2))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("planned")
    return astronaut_images(tmp / "imgs", {"a.png": (0, 0, 64, 64), "b.png": (64, 64, 128, 128)})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two different models, A and B."""
    import torch

    from lamfast.models import EDSR

    path = tmp_path_factory.mktemp("models") / "edsr.pt"
    torch.manual_seed(0)
    torch.save(EDSR(n_resblocks=1, n_feats=8, scale=4, rgb_range=1.0).state_dict(), path)
    return ["A=bundled", f"B={path}"]


@pytest.fixture(scope="module")
def stopped(images, models, tmp_path_factory):
    """A 2-model run stopped (as by Ctrl-C) before the second model started."""
    store = tmp_path_factory.mktemp("stopped") / "s.sqlite"
    call = UnitWorker.__call__

    def stop_at_b(self, unit):
        if unit.label == "B":
            raise KeyboardInterrupt
        return call(self, unit)

    mp = pytest.MonkeyPatch()
    mp.setattr(UnitWorker, "__call__", stop_at_b)
    try:
        with pytest.raises(KeyboardInterrupt):
            run([str(images)], models, store, CONFIG, progress=False)
    finally:
        mp.undo()
    return store


def test_the_store_records_the_work_set_before_computing(stopped):
    with ResultStore(stopped) as db:
        status = db.status()
    assert status.planned == {"A": 2, "B": 2} and status.finished == {"A": 2, "B": 0}
    assert status.text == "incomplete: 2 of 4 units (A 2 of 2, B 0 of 2)" and not status.complete


def test_report_of_a_stopped_run_says_incomplete(stopped, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", str(stopped), "-o", str(out), "--format", "html,tex"]) == 0
    assert "(store incomplete: 2 of 4 units (A 2 of 2, B 0 of 2))" in capsys.readouterr().out
    page = html.unescape((out / "index.html").read_text())
    assert "This store is incomplete: 2 of 4 units (A 2 of 2, B 0 of 2)" in page
    for table in (out / "tables").glob("*.tex"):
        assert "Incomplete: 2 of 4 units" in table.read_text(), table.name
    explorers = list(out.glob("explore/*/index.html"))
    assert explorers and all("incomplete: 2 of 4 units" in html.unescape(p.read_text()) for p in explorers)


def test_export_of_a_stopped_run_says_incomplete(stopped, tmp_path, capsys):
    assert main(["export", str(stopped), "-o", str(tmp_path / "rows.csv")]) == 0
    assert "(store incomplete: 2 of 4 units" in capsys.readouterr().out


def test_a_store_being_written_is_in_progress(images, tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    run([str(images)], ["bundled"], store, CONFIG, progress=False)
    with ResultStore(store) as db, db.conn:
        db.conn.execute("INSERT INTO leases (unit_key, owner, host, pid, claimed_at, expires) VALUES (?, ?, ?, ?, ?, ?)",
                        ("x", "other", socket.gethostname(), os.getpid(), time.time(), time.time() + 600))
    page = html.unescape(write_report(store, tmp_path / "r").read_text())
    assert "in progress: a run holds 1 unit now" in page


def test_a_complete_store_says_nothing(images, models, tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    run([str(images)], models, store, CONFIG, progress=False)
    assert main(["report", str(store), "-o", str(tmp_path / "r")]) == 0
    assert "incomplete" not in capsys.readouterr().out
    assert "This store is" not in (tmp_path / "r" / "index.html").read_text()


def test_shards_merged_know_all_their_work(images, models, tmp_path):
    parts = [tmp_path / f"p{k}.sqlite" for k in range(2)]
    for k, part in enumerate(parts):
        run([str(images)], models, part, CONFIG, shard=(k, 2), progress=False)
    lamfast.dataset.merge(tmp_path / "all.sqlite", parts)
    with ResultStore(tmp_path / "all.sqlite") as db:
        status = db.status()
    assert status.planned == {"A": 2, "B": 2} and status.complete
