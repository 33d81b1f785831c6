"""``--engine ray``: the same units on a Ray Data actor pool.

The run's device decides the actors: for a CUDA device, one actor per GPU
of the cluster (an error if it has none); for the CPU, CPU actors, even on
a cluster with GPUs (``map_batches`` with a callable class, ``concurrency``,
``num_gpus`` / ``num_cpus``). Actors compute units with the same
:class:`~lamfast.dataset.units.UnitWorker` as the local engine; the driver
commits each finished unit into the store, so resume semantics are
identical. Ray is optional: ``pip install lamfast[ray]``.

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
    """ValueError (one line) when Ray Data cannot be imported; call it before any work."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise LamfastError(f"the Ray engine needs Ray Data: pip install 'lamfast[ray]' ({exc})") from None


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


def run_units(units: list[Unit], config: RunConfig, models: list[str], actors: int | None = None,
              verbose: bool = False, log_file: str | None = None, cpus: int | None = None) -> Iterator[UnitRecord]:
    """Compute ``units`` on Ray, yielding each finished UnitRecord (order not kept).

    ``cpus``: the CPUs of a Ray runtime this call starts (default: Ray's, all of this machine's);
    ignored when Ray is already initialised.
    """
    require_ray()
    import ray
    import ray.data

    if not units:
        return
    started = not ray.is_initialized()
    # For the whole run, file descriptor 2 goes to the log: Ray's processes
    # inherit it, and the driver's C++ core worker writes there too. The
    # caller's progress bar writes through its own copy of the terminal.
    with contextlib.ExitStack() as stack:
        if not verbose:
            stack.enter_context(_stderr_into(log_file))
        if started:
            import logging
            import signal
            import threading

            # ray.init installs its own SIGTERM handler (sys.exit(15)); the
            # caller's, if any, stays in charge of how the command stops.
            main_thread = threading.current_thread() is threading.main_thread()
            sigterm = signal.getsignal(signal.SIGTERM) if main_thread else None
            ray.init(include_dashboard=False, log_to_driver=verbose, ignore_reinit_error=True,
                     logging_level=logging.INFO if verbose else logging.ERROR, configure_logging=verbose,
                     num_cpus=cpus)
            if main_thread and sigterm is not None:
                signal.signal(signal.SIGTERM, sigterm)
        if not verbose:
            stack.enter_context(_quiet_ray_logs(log_file))
        try:
            yield from _run(ray, units, config, models, actors)
        finally:
            if started:
                ray.shutdown()


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
