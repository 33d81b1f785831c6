"""Dataset-scale LAM: many images × models × windows into a resumable store.

A *unit* is one (image, model) pair: its windows run in one LAM engine call
(:func:`lamfast.lam.lam_windows`: one SR forward, batched crops or one
shared path) and are committed in one
transaction. Rerunning the same command skips finished units; ``shard=(k, n)``
keeps the units whose key hashes to k modulo n, for any launcher.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from tqdm.auto import tqdm


from lamfast.dataset.leases import (BUSY, DEFAULT_LEASE_SECONDS, DONE, LeaseBook, check_lease_seconds,
                                    network_filesystem)
from lamfast.dataset.store import ResultStore, UnitRecord
from lamfast.dataset.units import RunConfig, Unit
from lamfast.dataset.worker import UnitWorker
from lamfast.models import ModelSpec, model_labels
from lamfast.models.spec import file_sha

from lamfast.bundled import resolve
from lamfast.errors import LamfastError, LamfastNote
from lamfast.machine_load import oversubscribed
from lamfast.outputs import check_output_file
from lamfast.lam.progress import PathProgress, duration, per_point

# .npy: multi-band images [C,H,W] (lamfast.imageio.read_bands)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".npy"}
MANIFEST_SUFFIXES = {".txt", ".lst", ".csv", ".manifest"}


@dataclass
class RunSummary:
    """What one :func:`run` did: units planned, skipped (already in the store), done and failed, and windows.

    Example:
        >>> import os, tempfile
        >>> from lamfast import LAMParams
        >>> from lamfast.dataset import RunConfig, run
        >>> store = os.path.join(tempfile.mkdtemp(), "s.sqlite")
        >>> config = RunConfig(windows="random:2:16:0", lam=LAMParams(fold=2))
        >>> first, again = (run(["bundled"], ["bundled"], store, config, progress=False) for _ in range(2))
        >>> (first.units_done, first.units_skipped), (again.units_done, again.units_skipped)  # the second run resumes
        ((1, 0), (0, 1))
    """
    units_total: int = 0
    units_skipped: int = 0
    units_done: int = 0
    units_failed: int = 0  # failed in this run
    units_failed_before: int = 0  # of this run's work set, failed in an earlier run and not retried
    units_stale: int = 0  # in the store, but their image or checkpoint changed since: recomputed
    windows_done: int = 0
    windows_failed: int = 0
    seconds: float = 0.0
    units_by_others: int = 0  # finished by other workers on the store while this one ran
    units_failed_others: int = 0  # of those, the failed ones
    units_taken_over: int = 0  # claimed from a worker whose lease had expired (it died)
    failures: list[str] = field(default_factory=list)  # every failed unit of the work set, this run's first
    notes: list[str] = field(default_factory=list)  # what the user should know of the windows, once each

    @property
    def units_failed_total(self) -> int:
        """Failed units of this command's work set now in the store (this run's and earlier ones)."""
        return self.units_failed + self.units_failed_before + self.units_failed_others


def discover_inputs(inputs: Iterable[str]) -> list[tuple[str, str]]:
    """Images from folders (recursive), globs and manifest files: (absolute path, relative name) pairs,
    sorted by path and deduplicated.

    The relative name is what stays when a dataset is mounted elsewhere: the
    path below the folder given, below a glob's fixed leading folders, or as
    a manifest lists it; a file given alone is its name. A manifest lists one
    path per line (relative to the manifest; ``#`` comments). Listed files
    that do not exist are kept, to become failed rows. ``"bundled"`` is the
    bundled photo.
    """
    found: dict[str, str] = {}

    def add(path: Path, name: Path | str) -> None:
        found.setdefault(str(path.resolve()), Path(name).as_posix())

    for item in inputs:
        p = Path(resolve(item, "image"))
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    add(f, f.relative_to(p))
        elif p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES:
            for line in p.read_text().splitlines():
                line = line.split("#", 1)[0].strip().split(",", 1)[0].strip()
                if line:
                    add(p.parent / line, line if not Path(line).is_absolute() else Path(line).name)
        elif p.is_file():
            add(p, p.name)
        else:
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise LamfastError(f"input {item!r} is not a folder, file, manifest or matching glob",
                                   param="inputs")
            parts = Path(item).parts
            fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
            root = Path(*parts[:fixed]) if fixed else Path(".")
            for m in matches:
                if Path(m).is_file():
                    add(Path(m), Path(m).relative_to(root) if Path(m).is_relative_to(root) else Path(m).name)
    return sorted(found.items())


def discover_clips(inputs: Iterable[str]) -> list[tuple[str, str]]:
    """Clips from folders: (absolute folder path, relative name) pairs, sorted and deduplicated.

    A clip is a folder that holds frame images. Each input folder is searched
    (recursively) for such folders; an input that holds frames itself is
    one clip, named by its own name. ``"bundled"`` is the bundled clip.
    """
    from lamfast.request.sr_clip import FRAME_SUFFIXES

    found: dict[str, str] = {}
    for item in inputs:
        p = Path(resolve(item, "clip"))
        if not p.is_dir():
            raise LamfastError(f"input {item!r} is not a folder of clips (one folder of frames each)", param="inputs")
        for folder in [p, *sorted(d for d in p.rglob("*") if d.is_dir())]:
            if any(f.is_file() and f.suffix.lower() in FRAME_SUFFIXES for f in folder.iterdir()):
                name = folder.relative_to(p).as_posix() if folder != p else p.resolve().name
                found.setdefault(str(folder.resolve()), name)
    return sorted(found.items())


def input_sha(path: str) -> str | None:
    """Content hash of an input: a file's bytes, or a clip folder's frames (their names and bytes, in order)."""
    if not Path(path).is_dir():
        return file_sha(path)
    from lamfast.request.sr_clip import frame_files

    digest = hashlib.sha256()
    try:
        files = frame_files(path)
    except LamfastError:
        return None
    for f in files:
        digest.update(f.name.encode() + b"\0" + (file_sha(f) or "unreadable").encode())
    return digest.hexdigest()[:32]


def discover_images(inputs: Iterable[str]) -> list[str]:
    """The absolute paths of :func:`discover_inputs`.

    Example:
        >>> from lamfast.bundled import data_path
        >>> from lamfast.dataset import discover_images
        >>> [p.rsplit("/", 1)[1] for p in discover_images([str(data_path("astronaut.png"))])]
        ['astronaut.png']
    """
    return [path for path, _ in discover_inputs(inputs)]


def in_shard(unit_key: str, shard: tuple[int, int] | None) -> bool:
    if shard is None:
        return True
    k, n = shard
    return int(hashlib.sha1(unit_key.encode()).hexdigest(), 16) % n == k


def plan(images: list[tuple[str, str]], models: list[str], config: RunConfig,
         shard: tuple[int, int] | None) -> list[Unit]:
    """The units of a work set: ``images`` are :func:`discover_inputs` pairs.

    A unit's shard depends on its key only, and keys hold relative names
    and content hashes, so workers on machines that mount the data at
    different paths agree on the shards.
    """
    h = config.params_hash()
    specs = [ModelSpec.parse(m).resolved() for m in models]
    labels = model_labels(specs)
    image_shas = {img: input_sha(img) for img, _ in images}
    units = [Unit(img, spec.text, h, image_shas[img], spec.sha, name, label)
             for spec, label in zip(specs, labels) for img, name in images]
    return [u for u in dict((u.key, u) for u in units).values() if in_shard(u.key, shard)]


class RunPoints(PathProgress):
    """A local run's bar in path points: each unit's LAM replaces the points assumed for it by the points
    it plans, advances the bar point by point, and the first path points give the run's estimate."""

    def __init__(self, bar: tqdm, assumed: int, enabled: bool = True, noun: str = "path point") -> None:
        self.bar, self.assumed, self.enabled, self.noun = bar, assumed, enabled, noun
        self.unit_points = 0  # planned by the unit in flight
        self.unit_done_points = 0
        self.told = False

    def expect(self, points: int, windows: int) -> None:
        # the unit's plan replaces the points assumed for it
        change = points - (self.assumed if self.unit_points == 0 else 0)
        self.unit_points += points
        self.bar.total = max(self.bar.n, self.bar.total + change)
        self.bar.refresh()

    def estimate(self, seconds_per_point: float) -> None:
        if not self.told and self.enabled:
            self.told = True
            left = self.bar.total - self.bar.n
            tqdm.write(f"lamfast run: about {duration(seconds_per_point * left)} for the {left} {self.noun}s "
                       f"planned ({per_point(seconds_per_point)} per {self.noun}, measured on the first)", file=sys.stderr)
            busy = oversubscribed()
            if busy:
                tqdm.write(f"lamfast run: {busy}", file=sys.stderr)

    def advance(self, points: int) -> None:
        self.unit_done_points += points
        self.bar.update(points)

    def unit_done(self) -> None:
        """A unit ended (computed, failed before its path, or done by another worker): its points are
        on the bar, and what it planned or was assumed but did not run leaves the total."""
        planned = self.unit_points if self.unit_points else self.assumed
        self.bar.total = max(self.bar.n, self.bar.total - (planned - self.unit_done_points))
        self.bar.refresh()
        self.unit_points = self.unit_done_points = 0


def _is_current(unit: Unit, stored: tuple[str | None, str | None]) -> bool:
    """A stored unit still stands for ``unit`` unless its image or model bytes changed since."""
    return stored == (unit.image_sha, unit.model_sha)


def run(
    inputs: Iterable[str],
    models: list[str],
    store: str | Path,
    config: RunConfig = RunConfig(),
    *,
    shard: tuple[int, int] | None = None,
    engine: str = "local",
    progress: bool = True,
    retry_failed: bool = False,
    ray_actors: int | None = None,
    ray_cpus: int | None = None,
    verbose: bool = False,
    lease_seconds: float | None = DEFAULT_LEASE_SECONDS,
) -> RunSummary:
    """Run LAM over a dataset into ``store`` (SQLite), resuming where it stopped.

    Args:
        inputs: folders, globs or manifest files of images.
        models: ``"bundled"``, checkpoint paths, or ``"ARCH:PATH"``.
        store: the SQLite results file (created if missing).
        config: window spec and LAM parameters (see :class:`RunConfig`).
        shard: ``(k, n)``: only units whose key hashes to k mod n.
        engine: ``"local"`` or ``"ray"`` (Ray Data actor pool; ``bash scripts/setup.sh --extras ray``).
        progress: tqdm bar with windows/s and ETA.
        retry_failed: also redo units that failed before.
        ray_actors: actors in the Ray pool (default: the cluster's GPUs for a CUDA device, else its CPUs).
        ray_cpus: CPUs of the Ray runtime the run starts (default: all of this machine's).
        verbose: let Ray's log lines through (default: into ``<store>.ray.log``).
        lease_seconds: how long a claim on a unit lives without renewal
            (:mod:`lamfast.dataset.leases`): any number of runs on one store
            split its units, and a unit whose worker died is taken over this
            long after it stopped renewing. None: no claims (one worker alone;
            two would both compute everything).
    Returns:
        RunSummary with counts; failures are rows in the store, never
        exceptions. Units of the work set that failed in an earlier run and
        were skipped count in ``units_failed_before`` and are listed too.

    Example:
        >>> import os, tempfile
        >>> from lamfast import LAMParams
        >>> from lamfast.dataset import RunConfig, run
        >>> out = tempfile.mkdtemp()
        >>> summary = run(["bundled"], ["bundled"], os.path.join(out, "lam.sqlite"), RunConfig(windows="top:2:16", lam=LAMParams(fold=2)),
        ...               progress=False)  # the bundled photo with the bundled x4 model
        >>> summary.units_done, summary.windows_done, summary.units_failed
        (1, 2, 0)
    """
    if not models:
        raise LamfastError("no models given")
    if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise LamfastError(f"shard must be k/n with 0 <= k < n, got {shard[0]}/{shard[1]}")
    if engine not in ("local", "ray"):
        raise LamfastError(f"engine must be 'local' or 'ray', got {engine!r}", param="engine")
    for name, value in (("ray_actors", ray_actors), ("ray_cpus", ray_cpus)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise LamfastError(f"{name} must be an integer >= 1, got {value!r}", param=name)
    if lease_seconds is not None:
        check_lease_seconds(lease_seconds)
    if engine == "ray":
        from lamfast.dataset.ray_engine import require_ray

        require_ray()  # before the store is created or a bar drawn
    images = discover_clips(inputs) if config.video else discover_inputs(inputs)
    if not images:
        raise LamfastError("no clips (folders of frames) found in the inputs" if config.video
                           else "no images found in the inputs", param="inputs")
    start = time.perf_counter()
    summary = RunSummary()
    fs = network_filesystem(Path(store).parent if not Path(store).exists() else store)
    if fs is not None:
        warnings.warn(f"the store {store} is on a network file system ({fs}): runs on one host may share it, "
                      "runs on several hosts must not (SQLite's WAL is shared through one host's memory); give "
                      "each node its own store and combine them with lamfast.dataset.merge", LamfastNote)
    # Everything that can be wrong with the request is found before the store is made.
    check_output_file(store, param="store")
    units = plan(images, models, config, shard)
    worker = UnitWorker(config, models)
    worker.load_all()
    with ResultStore(store) as db:
        db.relocate([(u.key, u.image, u.model) for u in units])  # a store or dataset moved: the paths it has now
        db.relabel([(u.key, u.label) for u in units])
        # Read before the finished units: a unit another worker finishes in between is then
        # either not to do, or seen as finished since planning when it is claimed.
        planned_at = db.finished_times()
        done = db.finished_units(retry_failed=retry_failed)
        todo = [u for u in units if u.key not in done or not _is_current(u, done[u.key])]
        superseded = db.superseded([(u.key, u.image, u.model, u.params_hash) for u in todo])
        # the work set, recorded before any of it is computed: a report of a stopped run says what is missing
        db.plan([(u.key, u.image, u.model, u.label, u.params_hash) for u in units], superseded)
        summary.units_stale = sum(1 for u in todo if u.key in done or u.key in superseded)
        summary.units_total, summary.units_skipped = len(units), len(units) - len(todo)
        # Locally the bar counts path points, as each unit's LAM reports them (a slow model's unit of 8
        # windows moves it point by point); a unit not started yet counts as its spec's windows times
        # fold (or one window where the spec does not fix them). Ray's actors report whole units: there
        # it counts windows, else images.
        per_unit = config.windows.count
        # With a quiet Ray, stderr's descriptor goes to Ray's log for the run;
        # the bar keeps a copy of the terminal.
        bar_stream = os.fdopen(os.dup(2), "w") if engine == "ray" and not verbose else None
        if engine == "ray":
            bar = tqdm(total=len(todo) * (per_unit or 1), desc="lamfast run", unit="window" if per_unit else "image",
                       disable=not (progress and todo), **({"file": bar_stream} if bar_stream else {}))
            points = None
        else:
            # CEM's units count interventions: a guess of one block row's worth per window until they plan
            assumed = (per_unit or 1) * (config.lam.fold if config.method == "lam" else config.cem.coarse * 64)
            noun = "path point" if config.method == "lam" else "intervention"
            bar = tqdm(total=len(todo) * assumed, desc="lamfast run", unit=noun.split()[-1],
                       disable=not (progress and todo))
            points = RunPoints(bar, assumed, enabled=bool(progress and todo), noun=noun)

        shas = {u.key: (u.image_sha, u.model_sha) for u in todo}

        def commit(record: UnitRecord) -> None:
            db.write_unit(record, *shas.get(record.unit_key, (None, None)), replaces=superseded.get(record.unit_key))
            ok = sum(1 for r in record.rows if r.status == "ok")
            summary.notes += [n for n in record.notes if n not in summary.notes]
            summary.windows_done += ok
            summary.windows_failed += sum(1 for r in record.rows if r.status != "ok" and r.h >= 0)
            if record.status == "ok":
                summary.units_done += 1
            else:
                summary.units_failed += 1
                summary.failures.insert(summary.units_failed - 1, f"{Path(record.image).name} × "
                                                                  f"{record.label or record.model}: "
                                                                  f"{record.error}")
            if points is None:
                bar.update(per_unit if per_unit else 1)
            else:
                points.unit_done()
            bar.set_postfix(windows=summary.windows_done, failed=summary.units_failed)

        # Units of this work set that failed before and are skipped now stay
        # failures of this command: they count and they are listed.
        todo_keys = {u.key for u in todo}
        for key, (image, model, error) in db.failed_units({u.key for u in units} - todo_keys).items():
            summary.units_failed_before += 1
            summary.failures.append(f"{Path(image).name} × {model}: {error} (earlier run)")
        # Other runs on this store (other processes of this host) split the
        # work through leases: a unit is claimed before it is computed, and one
        # another worker holds is left to it, then waited for, or taken over
        # when its lease expires (the worker died).
        book = LeaseBook(store, lease_seconds) if lease_seconds is not None else None
        by_others: list[str] = []

        def claimed(unit: Unit, busy: list[Unit]) -> bool:
            if book is None:
                return True
            c = book.claim(unit.key, planned_at.get(unit.key))
            if c.state == DONE:
                by_others.append(unit.key)
                if points is None:
                    bar.update(per_unit if per_unit else 1)
                else:
                    points.unit_done()  # another worker did it: its assumed points leave the bar
                return False
            if c.state == BUSY:
                busy.append(unit)
                return False
            if c.taken_from is not None:
                summary.units_taken_over += 1
            return True

        try:
            with contextlib.ExitStack() as stack:
                if book is not None:
                    book.start_heartbeat()
                session = None
                if engine == "ray" and todo:
                    from lamfast.dataset.ray_engine import RaySession

                    # One Ray runtime for the whole run, shut down when it ends, fails or is interrupted.
                    session = stack.enter_context(RaySession(config, models, actors=ray_actors, verbose=verbose,
                                                             log_file=str(Path(store).with_suffix(".ray.log")),
                                                             cpus=ray_cpus))
                if session is not None:
                    worker = None  # the actors load their own
                else:
                    worker.progress = points
                pending = list(todo)
                while pending:
                    busy: list[Unit] = []
                    if session is not None:
                        batch = [u for u in pending if claimed(u, busy)]
                        for record in session.run(batch):
                            commit(record)
                    else:
                        for unit in pending:  # claimed one at a time, so workers started together interleave
                            if claimed(unit, busy):
                                commit(worker(unit))
                    pending = busy
                    if pending:
                        bar.set_postfix(waiting_for_other_workers=len(pending))
                        time.sleep(max(0.05, min(1.0, book.seconds / 4)))
        finally:
            if book is not None:
                book.close()  # gives back a unit in flight at once, so others need not wait for its expiry
            bar.close()
            if bar_stream is not None:
                bar_stream.close()
        summary.units_by_others = len(by_others)
        for key, (image, model, error) in db.failed_units(set(by_others)).items():
            summary.units_failed_others += 1
            summary.failures.append(f"{Path(image).name} × {model}: {error} (another worker)")
    summary.seconds = time.perf_counter() - start
    return summary


__all__ = ["RunConfig", "RunSummary", "Unit", "UnitWorker", "discover_images", "plan", "run"]
