"""``--engine ray``: the same units on a Ray Data actor pool.

One actor per GPU where the cluster has GPUs, CPU actors otherwise. Actors
compute units with the same :class:`~lamfast.dataset.runner.UnitWorker` as
the local engine; the driver commits each finished unit into the store, so
resume semantics are identical. Ray is optional: ``pip install lamfast[ray]``.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import replace
from typing import Iterator

from lamfast.dataset.units import RunConfig, Unit, UnitWorker
from lamfast.dataset.store import UnitRecord


class _UnitActor:
    def __init__(self, config: RunConfig, models: list[str], threads: int):
        import torch

        torch.set_num_threads(threads)
        self.worker = UnitWorker(config, models)

    def __call__(self, batch: dict) -> dict:
        records = [
            self.worker(Unit(str(image), str(model), str(h)))
            for image, model, h in zip(batch["image"], batch["model"], batch["params_hash"])
        ]
        return {"record": [pickle.dumps(r) for r in records]}


def run_units(units: list[Unit], config: RunConfig, models: list[str], actors: int | None = None) -> Iterator[UnitRecord]:
    """Compute ``units`` on Ray, yielding each finished UnitRecord (order not kept)."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ValueError(f"--engine ray needs Ray Data: pip install 'lamfast[ray]' ({exc})") from None
    if not units:
        return
    if not ray.is_initialized():
        import logging

        ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, logging_level=logging.ERROR,
                 num_cpus=int(os.environ.get("LAMFAST_RAY_CPUS", os.cpu_count() or 1)))
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", 1)))
    n = actors or (gpus if gpus else cpus)
    n = max(1, min(n, len(units)))
    cfg = replace(config, device="cuda") if gpus else config
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    # One unit per block, made on the driver: no upstream task competes with
    # the actors for CPUs, and actors pick units up as they free.
    ds = ray.data.from_items([{"image": u.image, "model": u.model, "params_hash": u.params_hash} for u in units],
                             override_num_blocks=len(units))
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
