"""Runs that share one store split its units through leases; a dead run's unit is taken over;
``lamfast merge`` combines stores and refuses conflicting ones."""
from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import astronaut_crops

from lamfast.dataset import RunConfig, merge, run
from lamfast.dataset.leases import BUSY, CLAIMED, DONE, LeaseBook, live_leases
from lamfast.dataset.merge import row_difference
from lamfast.dataset.store import ResultStore, UnitRecord
from lamfast.errors import LamfastError
from lamfast.lam.params import LAMParams

ARGS = ["--windows", "top:2:16", "--fold", "12", "--no-progress", "--device", "cpu"]


@pytest.fixture()
def images(tmp_path) -> Path:
    folder = tmp_path / "imgs"
    astronaut_crops(folder, 9, 96, (13, 11))
    return folder


def _cmd(images: Path, store: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lamfast", "run", str(images), "--store", str(store), *ARGS, *extra]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _snapshot(store: Path) -> tuple[list, list]:
    """What a store holds, less timings: rows (maps included) and units."""
    conn = sqlite3.connect(str(store))
    try:
        rows = conn.execute("SELECT key, unit_key, status, error, h, w, size, di, gini, nan_steps, psnr, ssim, "
                            "attribution FROM results ORDER BY key").fetchall()
        units = conn.execute("SELECT unit_key, status, windows, label FROM units ORDER BY unit_key").fetchall()
    finally:
        conn.close()
    return rows, units


def _counts(stdout: str) -> dict[str, int]:
    out = {"done": int(re.search(r"(\d+) units done", stdout).group(1)),
           "skipped": int(re.search(r"(\d+) skipped", stdout).group(1))}
    for name, pattern in (("others", r"(\d+) done by other workers"), ("taken", r"(\d+) taken over")):
        m = re.search(pattern, stdout)
        out[name] = int(m.group(1)) if m else 0
    return out


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def _store_with_unit(path: Path, key: str) -> float:
    with ResultStore(path) as db:
        db.write_unit(UnitRecord(key, "img.png", "bundled", "p", "ok", rows=[]))
        return db.finished_times()[key]


def test_claim_busy_expiry_takeover_and_done(tmp_path):
    store = tmp_path / "s.sqlite"
    ResultStore(store).close()
    clock = Clock()
    a, b = LeaseBook(store, 10, clock=clock), LeaseBook(store, 10, clock=clock)
    assert a.claim("u1", None).state == CLAIMED
    assert a.claim("u1", None).state == CLAIMED  # its own lease: claimed again
    busy = b.claim("u1", None)
    assert busy.state == BUSY and busy.holder == a.owner
    clock.t += 9.9
    assert b.claim("u1", None).state == BUSY
    a.renew()
    clock.t += 9.9  # 19.8 s after the claim, 9.9 s after the renewal
    assert b.claim("u1", None).state == BUSY
    clock.t += 0.2  # a stopped renewing: its lease expired
    taken = b.claim("u1", None)
    assert taken.state == CLAIMED and taken.taken_from == a.owner
    assert [lease["owner"] for lease in live_leases(store)] == [b.owner]
    # committing the unit ends the lease; a worker that planned before the commit sees it done
    finished = _store_with_unit(store, "u1")
    assert live_leases(store) == []
    assert a.claim("u1", None).state == DONE
    # one that planned after it (stale unit, retried failure) may claim it
    assert a.claim("u1", finished).state == CLAIMED
    a.close()
    assert live_leases(store) == []  # closing gives back what it holds
    b.close()


def test_heartbeat_keeps_a_lease_alive(tmp_path):
    store = tmp_path / "s.sqlite"
    ResultStore(store).close()
    a, b = LeaseBook(store, 0.3), LeaseBook(store, 0.3)
    assert a.claim("u1", None).state == CLAIMED
    a.start_heartbeat()
    seen = set()
    for _ in range(10):  # 1 s, three lease lengths
        time.sleep(0.1)
        seen.add(b.claim("u1", None).state)
    assert seen == {BUSY}
    a._stop.set()
    a._beat.join()  # the worker stops beating (it died): its lease runs out
    time.sleep(0.4)
    assert b.claim("u1", None).taken_from == a.owner
    a.close()
    b.close()


def test_lease_seconds_checked():
    for bad in (0, -1, "10", True):
        with pytest.raises(LamfastError, match="lease_seconds"):
            run(["x"], ["bundled"], "unused.sqlite", lease_seconds=bad)


def test_two_runs_in_threads_compute_each_unit_once(images, tmp_path):
    config = RunConfig(windows="top:2:16", lam=LAMParams(fold=4))
    single = tmp_path / "single.sqlite"
    run([str(images)], ["bundled"], single, config, progress=False)
    shared = tmp_path / "shared.sqlite"
    summaries = [None, None]

    def go(i):
        summaries[i] = run([str(images)], ["bundled"], shared, config, progress=False, lease_seconds=5)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(s.units_done for s in summaries) == 9
    assert all(s.units_done + s.units_by_others == 9 for s in summaries)
    assert _snapshot(shared) == _snapshot(single)
    assert live_leases(shared) == []


@pytest.mark.slow
@pytest.mark.xdist_group("processes")
def test_three_processes_split_the_work_and_equal_one_run(images, tmp_path):
    single = tmp_path / "single.sqlite"
    subprocess.run(_cmd(images, single), check=True, capture_output=True, env=_env(), timeout=600)
    shared = tmp_path / "shared.sqlite"
    procs = [subprocess.Popen(_cmd(images, shared), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env()) for _ in range(3)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1] for o in outs]
    counts = [_counts(o[0]) for o in outs]
    assert sum(c["done"] for c in counts) == 9, counts  # every unit computed once
    # a run that started late skips what was finished when it planned
    assert all(c["done"] + c["others"] + c["skipped"] == 9 for c in counts), counts
    assert _snapshot(shared) == _snapshot(single)
    assert live_leases(shared) == []


@pytest.mark.slow
@pytest.mark.xdist_group("processes")
def test_a_killed_process_unit_is_taken_over(images, tmp_path):
    single = tmp_path / "single.sqlite"
    subprocess.run(_cmd(images, single), check=True, capture_output=True, env=_env(), timeout=600)
    shared = tmp_path / "shared.sqlite"
    procs = [subprocess.Popen(_cmd(images, shared, "--lease-seconds", "2"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_env()) for _ in range(3)]
    by_pid = {p.pid: p for p in procs}
    victim = None
    deadline = time.time() + 120
    while victim is None and time.time() < deadline:  # the first process seen holding a lease dies
        if shared.exists():
            try:
                held = [lease["pid"] for lease in live_leases(shared) if lease["pid"] in by_pid]
            except sqlite3.OperationalError:
                held = []
            if held:
                victim = by_pid[held[0]]
                victim.send_signal(signal.SIGKILL)
        time.sleep(0.005)
    assert victim is not None, "no process was seen holding a lease"
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    survivors = [p for p in procs if p is not victim]
    outs = [p.communicate(timeout=600) for p in survivors]
    assert [p.returncode for p in survivors] == [0, 0], [o[1] for o in outs]
    counts = [_counts(o[0]) for o in outs]
    # the unit the victim held stayed leased until its lease expired, then one survivor took it
    assert sum(c["taken"] for c in counts) == 1, counts
    assert _snapshot(shared) == _snapshot(single)
    assert live_leases(shared) == []


def test_merge_of_shards_equals_one_run_and_refuses_conflicts(images, tmp_path, capsys):
    from lamfast.cli import main

    config = RunConfig(windows="top:2:16", lam=LAMParams(fold=4))
    single = tmp_path / "single.sqlite"
    run([str(images)], ["bundled"], single, config, progress=False)
    shards = [tmp_path / f"node{k}.sqlite" for k in range(3)]
    for k, path in enumerate(shards):
        run([str(images)], ["bundled"], path, config, shard=(k, 3), progress=False)
    merged = tmp_path / "merged.sqlite"
    summary = merge(merged, shards)
    assert summary.units_added == 9 and summary.units_same == 0
    assert _snapshot(merged) == _snapshot(single)
    # merging again, or a store holding the same units, changes nothing
    again = merge(merged, [single, shards[0]])
    assert again.units_added == 0 and again.rows_written == 0 and again.units_same == 9 + len(ResultStore(
        shards[0]).finished_units())
    assert _snapshot(merged) == _snapshot(single)

    # A store with a different number for one window is refused, and nothing is written.
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(shards[1].read_bytes())
    conn = sqlite3.connect(str(bad))
    key = conn.execute("SELECT key FROM results WHERE status = 'ok' ORDER BY key LIMIT 1").fetchone()[0]
    conn.execute("UPDATE results SET di = di * (1 + 1e-4) WHERE key = ?", (key,))
    conn.commit()
    conn.close()
    fresh = tmp_path / "fresh.sqlite"
    with pytest.raises(LamfastError, match=r"1 units differ between the stores, nothing was written: .*di "):
        merge(fresh, [single, bad])
    assert not fresh.exists()
    before = _snapshot(merged)
    assert main(["merge", str(bad), "-o", str(merged)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "units differ" in err and "Traceback" not in err
    assert _snapshot(merged) == before
    # within the tolerance it is the same result
    assert merge(merged, [bad], rtol=1e-3).units_same == len(ResultStore(bad).finished_units())


def test_merge_a_success_replaces_a_failure(images, tmp_path):
    config = RunConfig(windows="top:2:16", lam=LAMParams(fold=4))
    good = tmp_path / "good.sqlite"
    run([str(images)], ["bundled"], good, config, progress=False)
    failed = tmp_path / "failed.sqlite"
    failed.write_bytes(good.read_bytes())
    conn = sqlite3.connect(str(failed))
    unit = conn.execute("SELECT unit_key FROM units ORDER BY unit_key LIMIT 1").fetchone()[0]
    conn.execute("DELETE FROM results WHERE unit_key = ?", (unit,))
    conn.execute("INSERT INTO results (key, unit_key, image, model, h, w, size, params_hash, params, status, error) "
                 "SELECT unit_key || '|*', unit_key, image, model, -1, -1, -1, params_hash, '{}', 'failed', 'oom' "
                 "FROM units WHERE unit_key = ?", (unit,))
    conn.execute("UPDATE units SET status = 'failed', error = 'oom', windows = 0 WHERE unit_key = ?", (unit,))
    conn.commit()
    conn.close()
    out = tmp_path / "out.sqlite"
    merge(out, [failed])
    summary = merge(out, [good])
    assert summary.units_replaced == 1 and summary.units_same == 8
    assert _snapshot(out) == _snapshot(good)
    # the other way round, the failure does not replace the success
    out2 = tmp_path / "out2.sqlite"
    merge(out2, [good, failed])
    assert _snapshot(out2) == _snapshot(good)


def test_merge_refuses_a_store_being_written(images, tmp_path):
    store = tmp_path / "s.sqlite"
    run([str(images)], ["bundled"], store, RunConfig(windows="top:1:16", lam=LAMParams(fold=2)), progress=False)
    book = LeaseBook(store, 60)
    book.claim("someone|else", None)
    with pytest.raises(LamfastError, match="1 live leases: a run is writing it"):
        merge(tmp_path / "out.sqlite", [store])
    book.close()
    assert merge(tmp_path / "out.sqlite", [store]).units_added == 9
    with pytest.raises(LamfastError, match="no such results store"):
        merge(tmp_path / "out.sqlite", [tmp_path / "missing.sqlite"])
    with pytest.raises(LamfastError, match="is the output store"):
        merge(store, [store])


def test_row_difference_names_what_differs():
    base = {"status": "ok", "nan_steps": 0, "scale": 4, "lr_size": "24x24", "di": 1.0, "gini": 0.5, "psnr": 30.0,
            "ssim": 0.9, "video": None, "attribution": None}
    assert row_difference(base, dict(base), 1e-6) is None
    assert "nan_steps" in row_difference(base, {**base, "nan_steps": 1}, 1e-6)
    assert "psnr" in row_difference(base, {**base, "psnr": 30.1}, 1e-6)
    assert row_difference(base, {**base, "psnr": 30.0 + 1e-9}, 1e-6) is None
    assert "psnr" in row_difference(base, {**base, "psnr": None}, 1e-6)


def test_network_filesystem_from_the_mount_table(tmp_path):
    from lamfast.dataset.leases import network_filesystem

    mounts = ("/dev/sda1 / ext4 rw 0 0\n"
              "server:/export /mnt/shared nfs4 rw,relatime 0 0\n"
              "tmpfs /mnt/shared/local tmpfs rw 0 0\n"
              "//nas/x /mnt/my\\040share cifs rw 0 0\n")
    assert network_filesystem("/mnt/shared/runs/s.sqlite", mounts) == "nfs4"
    assert network_filesystem("/mnt/shared", mounts) == "nfs4"
    assert network_filesystem("/mnt/shared/local/s.sqlite", mounts) is None  # the deepest mount decides
    assert network_filesystem("/mnt/sharedother/s.sqlite", mounts) is None
    assert network_filesystem("/mnt/my share/s.sqlite", mounts) == "cifs"
    assert network_filesystem("/home/u/s.sqlite", mounts) is None


def test_a_store_on_a_network_filesystem_gets_a_note(images, tmp_path, monkeypatch):
    import warnings

    from lamfast.dataset import runner
    from lamfast.errors import LamfastNote

    monkeypatch.setattr(runner, "network_filesystem", lambda path: "nfs4")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run([str(images)], ["bundled"], tmp_path / "s.sqlite", RunConfig(windows="top:1:16", lam=LAMParams(fold=2)),
            progress=False)
    notes = [str(w.message) for w in caught if issubclass(w.category, LamfastNote)]
    assert any("network file system (nfs4)" in n and "several hosts must not" in n for n in notes), notes


def test_a_new_store_gets_its_tables_and_version_in_one_transaction(tmp_path, monkeypatch):
    """Runs that open a new store together must see nothing or all of it: the tables and the layout version are
    written between one BEGIN and its COMMIT (a commit between them let a second run find the tables at
    version 0 and refuse the store)."""
    seen: list[str] = []
    connect = sqlite3.connect

    def traced(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(lambda sql: seen.append(" ".join(sql.split())[:40].upper()))
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    ResultStore(tmp_path / "new.sqlite").close()
    begin = seen.index("BEGIN IMMEDIATE")
    commit = begin + seen[begin:].index("COMMIT")
    inside = seen[begin + 1:commit]
    # units, results, planned, leases
    assert sum(s.startswith("CREATE TABLE") for s in inside) == 4 and any("USER_VERSION" in s for s in inside), seen


def test_stores_opened_at_once_by_many_threads_all_open(tmp_path):
    for k in range(10):
        path, errors = tmp_path / f"s{k}.sqlite", []

        def open_store():
            try:
                ResultStore(path).close()
            except Exception as exc:  # noqa: BLE001 (collected for the assert)
                errors.append(exc)

        threads = [threading.Thread(target=open_store) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors


def test_reading_the_leases_of_a_store_being_created_does_not_break_it(tmp_path):
    """A poller (a dashboard, a test) reading leases while a run creates the store must not create tables in
    it: the run would find a store that is not new, at layout version 0, and refuse it."""
    path = tmp_path / "s.sqlite"
    sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").fetchone()  # the file exists, empty
    assert live_leases(path) == []
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
    # a lease table alone (what an older lamfast's reader left) still makes a new store
    with sqlite3.connect(path) as db:
        db.executescript("CREATE TABLE leases (unit_key TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, "
                         "pid INTEGER NOT NULL, claimed_at REAL NOT NULL, expires REAL NOT NULL);")
    ResultStore(path).close()
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE mine (x)")
    with pytest.raises(LamfastError, match="layout version 0"):
        ResultStore(other)
