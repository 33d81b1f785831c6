"""``--engine ray``: the same units on a Ray Data actor pool.

The run's device decides the actors: for a CUDA device, one actor per GPU
of the cluster (an error if it has none); for the CPU, CPU actors, even on
a cluster with GPUs (``map_batches`` with a callable class, ``concurrency``,
``num_gpus`` / ``num_cpus``). Actors compute units with the same
:class:`~lamfast.dataset.units.UnitWorker` as the local engine; the driver
commits each finished unit into the store, so resume semantics are
identical. Ray is optional: ``bash scripts/setup.sh --extras ray``.

Ray's own log lines go to a file (``log_file``) unless ``verbose``, so they
do not mix into the progress bar; Ray's loggers are put back as they were
when the run ends. A Ray runtime this module started is shut
down when the run ends, fails or is interrupted, so no Ray process outlives
the command.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import sys
from dataclasses import replace
from typing import Iterator

from lamfast.dataset.units import RunConfig, Unit
from lamfast.dataset.worker import UnitWorker
from lamfast.dataset.store import UnitRecord

from lamfast.errors import LamfastError


class _UnitActor:
    def __init__(self, config: RunConfig, models: list[str], threads: int):
        import torch

        torch.set_num_threads(threads)
        self.worker = UnitWorker(config, models)

    def __call__(self, batch: dict) -> dict:
        records = [self.worker(pickle.loads(blob)) for blob in batch["unit"]]
        return {"record": [pickle.dumps(r) for r in records]}


def require_ray() -> None:
    """MissingDependency (one line) when Ray Data cannot be imported; call it before any work."""
    from lamfast.optional import import_optional

    import_optional("ray.data", "the Ray engine", param="engine")


@contextlib.contextmanager
def _stderr_into(log_file: str | None):
    """File descriptor 2 goes to ``log_file`` (or nowhere) inside the block: what C++ code and
    child processes write there, which Python's logging cannot reach."""
    sys.stderr.flush()
    saved = os.dup(2)
    target = os.open(log_file or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(target, 2)
    os.close(target)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


RAY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune")


@contextlib.contextmanager
def _quiet_ray_logs(log_file: str | None):
    """Inside the block Ray's Python loggers write to ``log_file`` only (or stay silent below ERROR
    without one); afterwards each has its handlers, level and propagation back."""
    import logging

    saved = {}
    opened = []
    for name in RAY_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), logger.level, logger.propagate)
        if log_file:
            opened.append(logging.FileHandler(log_file))
        logger.handlers = opened[-1:] if log_file else []
        logger.setLevel(logging.INFO if log_file else logging.ERROR)
        logger.propagate = False
    try:
        yield
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)
        for handler in opened:
            handler.close()


class RaySession:
    """A Ray runtime for one dataset run (context manager): started on entry unless one is running,
    shut down on exit (also on Ctrl-C) if it started it; :meth:`run` computes units on its actor pool.

    ``cpus``: the CPUs of a Ray runtime this session starts (default: Ray's, all of this machine's);
    ignored when Ray is already initialised. ``verbose``: let Ray's log lines through (else into
    ``log_file``).
    """

    def __init__(self, config: RunConfig, models: list[str], *, actors: int | None = None, verbose: bool = False,
                 log_file: str | None = None, cpus: int | None = None):
        self.config, self.models, self.actors = config, models, actors
        self.verbose, self.log_file, self.cpus = verbose, log_file, cpus
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "RaySession":
        require_ray()
        import ray

        self.ray = ray
        stack = self._stack.__enter__()
        try:
            # For the whole run, file descriptor 2 goes to the log: Ray's processes
            # inherit it, and the driver's C++ core worker writes there too. The
            # caller's progress bar writes through its own copy of the terminal.
            if not self.verbose:
                stack.enter_context(_stderr_into(self.log_file))
            if not ray.is_initialized():
                import logging
                import signal
                import threading

                # ray.init installs its own SIGTERM handler (sys.exit(15)); the
                # caller's, if any, stays in charge of how the command stops.
                main_thread = threading.current_thread() is threading.main_thread()
                sigterm = signal.getsignal(signal.SIGTERM) if main_thread else None
                ray.init(include_dashboard=False, log_to_driver=self.verbose, ignore_reinit_error=True,
                         logging_level=logging.INFO if self.verbose else logging.ERROR,
                         configure_logging=self.verbose, num_cpus=self.cpus)
                stack.callback(ray.shutdown)
                if main_thread and sigterm is not None:
                    signal.signal(signal.SIGTERM, sigterm)
            if not self.verbose:
                stack.enter_context(_quiet_ray_logs(self.log_file))
        except BaseException:
            self._stack.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)

    def run(self, units: list[Unit]) -> Iterator[UnitRecord]:
        """Compute ``units`` on the actor pool, yielding each finished UnitRecord (order not kept)."""
        if units:
            yield from _run(self.ray, units, self.config, self.models, self.actors)


def _run(ray, units: list[Unit], config: RunConfig, models: list[str], actors: int | None) -> Iterator[UnitRecord]:
    resources = ray.cluster_resources()
    cpus = max(1, int(resources.get("CPU", 1)))
    # The user's device decides: a CPU run stays on CPUs on a cluster with GPUs.
    gpus = int(resources.get("GPU", 0)) if str(config.device).startswith("cuda") else 0
    if str(config.device).startswith("cuda") and not gpus:
        raise LamfastError(f"device {config.device!r}: the Ray cluster has no GPU", param="device")
    n = actors or (gpus if gpus else cpus)
    n = max(1, min(n, len(units)))
    # Each GPU actor sees one GPU as cuda:0, whichever index the driver named.
    cfg = replace(config, device="cuda") if gpus else config
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    # One unit per block, made on the driver: no upstream task competes with
    # the actors for CPUs, and actors pick units up as they free.
    ds = ray.data.from_items([{"unit": pickle.dumps(u)} for u in units], override_num_blocks=len(units))
    out = ds.map_batches(
        _UnitActor,
        fn_constructor_kwargs={"config": cfg, "models": models, "threads": max(1, cpus // n) if not gpus else 2},
        batch_size=1,
        concurrency=n,
        num_gpus=1 if gpus else 0,
        num_cpus=1 if not gpus else 0,
    )
    for row in out.iter_rows():
        yield pickle.loads(row["record"])
