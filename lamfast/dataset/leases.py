"""Leases: how workers that share one results store split its units.

A worker claims a unit before computing it: a row of the store's ``leases``
table with its owner, host, process and an expiry. While it works, a
heartbeat thread pushes the expiry forward; committing the unit removes the
row (:meth:`lamfast.dataset.store.ResultStore.write_unit`). Another worker
skips a unit under a live lease and comes back to it; a lease whose expiry
has passed belongs to a worker that died (killed, its node lost), and the
unit is taken over.

A claim checks, in one write transaction, that the unit was not finished
since the claimer planned its work and that no live lease holds it, so two
workers never both hold one unit. This rests on SQLite: its file locks, and
the WAL's shared memory, which only processes of one host share. So runs
split a store on one machine; nodes of a cluster each write a store of
their own (``shard=``) and :func:`lamfast.dataset.merge` combines them
(:func:`network_filesystem` tells a run that its store is on one).
Expiries are wall-clock times of the claiming host.
"""
from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from lamfast.errors import LamfastError

SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    unit_key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    claimed_at REAL NOT NULL,
    expires REAL NOT NULL
);
"""

DEFAULT_LEASE_SECONDS = 60.0

# What a claim finds.
CLAIMED, DONE, BUSY = "claimed", "done", "busy"


@dataclass(frozen=True)
class Claim:
    """The outcome of :meth:`LeaseBook.claim`: ``state`` is ``"claimed"``, ``"done"`` (finished by
    another worker since this one planned) or ``"busy"`` (under another worker's live lease);
    ``taken_from`` names the owner of the expired lease a claim took over."""

    state: str
    taken_from: str | None = None
    holder: str | None = None


def check_lease_seconds(seconds) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise LamfastError(f"lease_seconds must be a number > 0, got {seconds!r}", param="lease_seconds")
    return float(seconds)


class LeaseBook:
    """One worker's leases in a store.

    Args:
        path: the store's SQLite file (its ``units`` table must exist).
        seconds: how long a lease lives without renewal; the heartbeat
            renews every third of it.
        clock: wall-clock time source (tests pass a fake one).
    """

    def __init__(self, path: str | Path, seconds: float = DEFAULT_LEASE_SECONDS, clock=time.time):
        self.path = str(path)
        self.seconds = check_lease_seconds(seconds)
        self.clock = clock
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owner = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.conn = self._connect()
        self.conn.executescript(SCHEMA)
        self._beat: threading.Thread | None = None
        self._stop = threading.Event()

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: claims open their own IMMEDIATE transactions. No fsync per claim
        # (the store's WAL is NORMAL too): a claim lost to a power cut only lets another worker
        # compute the unit again.
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def claim(self, unit_key: str, finished_at: float | None) -> Claim:
        """Claim ``unit_key`` unless it was finished since planning (its stored ``finished_at`` is no
        longer ``finished_at``, None: it was not in the store) or another worker's lease on it lives."""
        now = self.clock()
        self.conn.execute("BEGIN IMMEDIATE")  # the check and the claim are one write: no two holders
        try:
            row = self.conn.execute("SELECT finished_at FROM units WHERE unit_key = ?", (unit_key,)).fetchone()
            if row is not None and row[0] != finished_at:
                self.conn.execute("DELETE FROM leases WHERE unit_key = ? AND owner = ?", (unit_key, self.owner))
                self.conn.execute("COMMIT")
                return Claim(DONE)
            lease = self.conn.execute("SELECT owner, expires FROM leases WHERE unit_key = ?", (unit_key,)).fetchone()
            if lease is not None and lease[0] != self.owner and lease[1] > now:
                self.conn.execute("COMMIT")
                return Claim(BUSY, holder=lease[0])
            self.conn.execute("INSERT OR REPLACE INTO leases (unit_key, owner, host, pid, claimed_at, expires) "
                              "VALUES (?, ?, ?, ?, ?, ?)",
                              (unit_key, self.owner, self.host, self.pid, now, now + self.seconds))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        taken = lease[0] if lease is not None and lease[0] != self.owner else None
        return Claim(CLAIMED, taken_from=taken)

    def renew(self, conn: sqlite3.Connection | None = None) -> int:
        """Push every lease of this worker ``seconds`` into the future; returns how many it holds."""
        conn = conn or self.conn
        return conn.execute("UPDATE leases SET expires = ? WHERE owner = ?",
                            (self.clock() + self.seconds, self.owner)).rowcount

    def release(self, unit_key: str) -> None:
        """Give a claimed unit back without a result (the run was interrupted)."""
        self.conn.execute("DELETE FROM leases WHERE unit_key = ? AND owner = ?", (unit_key, self.owner))

    def release_all(self) -> None:
        self.conn.execute("DELETE FROM leases WHERE owner = ?", (self.owner,))

    def start_heartbeat(self) -> None:
        """Renew this worker's leases every third of their length, from a thread with its own
        connection, so a long unit keeps its lease while the main thread computes."""
        if self._beat is not None:
            return

        def beat() -> None:
            conn = self._connect()
            try:
                while not self._stop.wait(self.seconds / 3):
                    try:
                        self.renew(conn)
                    except sqlite3.OperationalError:
                        pass  # the store was busy past the timeout: the next beat tries again
            finally:
                conn.close()

        self._beat = threading.Thread(target=beat, name="lamfast-lease-heartbeat", daemon=True)
        self._beat.start()

    def close(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        try:
            self.release_all()
        finally:
            self.conn.close()

    def __enter__(self) -> "LeaseBook":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# File systems that span hosts: SQLite's WAL (the store's mode) needs memory shared by every process
# that opens the file, so processes of one host only; and many such mounts keep no reliable locks.
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "lustre", "gpfs", "beegfs",
                       "fuse.glusterfs", "glusterfs", "ceph", "fuse.ceph", "9p", "afs", "fuse.s3fs", "fuse.gcsfuse"}


def network_filesystem(path: str | Path, mounts: str | None = None) -> str | None:
    """The type of the network file system ``path`` lies on (from ``/proc/mounts``, or ``mounts``,
    that file's text), or None: a local one, or a system without ``/proc/mounts``."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    target = Path(path).resolve()
    best, kind = -1, None
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = Path(parts[1].replace("\\040", " "))
        if (target == point or point in target.parents) and len(point.parts) > best:
            best, kind = len(point.parts), parts[2]
    return kind if kind in NETWORK_FILESYSTEMS else None


def live_leases(path: str | Path) -> list[dict]:
    """The leases in a store: ``[{"unit_key", "owner", "host", "pid", "claimed_at", "expires"}]``.

    Only reads: a store being created has no leases yet (creating its table here would make the
    run creating the store see a store that is not new, and refuse it)."""
    conn = sqlite3.connect(str(path), timeout=60)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'leases'").fetchone() is None:
            return []
        cols = ("unit_key", "owner", "host", "pid", "claimed_at", "expires")
        return [dict(zip(cols, r)) for r in conn.execute(f"SELECT {', '.join(cols)} FROM leases ORDER BY unit_key")]
    finally:
        conn.close()


__all__ = ["BUSY", "CLAIMED", "DONE", "DEFAULT_LEASE_SECONDS", "NETWORK_FILESYSTEMS", "Claim", "LeaseBook",
           "check_lease_seconds", "live_leases", "network_filesystem"]
