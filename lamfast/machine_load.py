"""Whether other work on this machine leaves torch's threads fewer cores than it uses.

torch's intra-op threads wait for each other at every operation: when one of them shares a core with
another process, each operation waits for the slowest. Measured on a 2-core machine, one LAM call took
0.3-0.5 s quiet and 0.09-10.6 s while other processes ran. lamfast never changes the thread count (the
process is the user's); it says so and names the remedy.
"""
from __future__ import annotations

import os

import torch


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def oversubscribed(load: float | None = None, threads: int | None = None, ncores: int | None = None) -> str | None:
    """One line when the machine's load (the 1-minute average, less this process's own one) leaves fewer
    free cores than torch's threads; None otherwise, or where the load is not known.

    Example:
        >>> from lamfast.machine_load import oversubscribed
        >>> print(oversubscribed(load=3.0, threads=2, ncores=2))
        the machine is busy (load 3.0 on 2 cores) and torch runs 2 threads, which wait on the busy cores: LAM can run many times slower; run fewer threads (OMP_NUM_THREADS=1, or torch.set_num_threads(1))
        >>> oversubscribed(load=0.9, threads=2, ncores=2) is None
        True
    """
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return None
    threads = threads or torch.get_num_threads()
    ncores = ncores or cores()
    others = max(0.0, load - 1.0)  # this process counts once in the average
    if threads <= 1 or ncores - others >= threads - 0.5:
        return None
    fewer = max(1, int(ncores - others))
    return (f"the machine is busy (load {load:.1f} on {ncores} cores) and torch runs {threads} threads, which wait on "
            f"the busy cores: LAM can run many times slower; run fewer threads (OMP_NUM_THREADS={fewer}, or "
            f"torch.set_num_threads({fewer}))")


__all__ = ["cores", "oversubscribed"]
