"""One dataset run in its own process: ``python lease_worker.py IMAGES STORE LEASES WINDOWS FOLD``.

LEASES is ``on`` (the default claims, 60 s leases with their heartbeat) or ``off``
(``lease_seconds=None``). The bundled TinySR, a fresh store. Prints one JSON line with the run's
own seconds (imports and the model's first load excluded by a warm-up run into another store).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

import lamfast
from lamfast.dataset import RunConfig, run
from lamfast.lam.params import LAMParams


def main() -> None:
    images, store, leases, windows, fold = sys.argv[1:6]
    config = RunConfig(windows=windows, lam=LAMParams(fold=int(fold)))
    warm = Path(store).with_suffix(".warm.sqlite")
    run([images], ["bundled"], warm, RunConfig(windows="top:1:16", lam=LAMParams(fold=2)), progress=False,
        shard=(0, 4))
    start = time.perf_counter()
    summary = run([images], ["bundled"], store, config, progress=False,
                  lease_seconds=60.0 if leases == "on" else None)
    seconds = time.perf_counter() - start
    print(json.dumps({"leases": leases, "seconds": seconds, "units": summary.units_done,
                      "windows": summary.windows_done, "threads": torch.get_num_threads(),
                      "extension": lamfast.ext_available()}))


if __name__ == "__main__":
    main()
