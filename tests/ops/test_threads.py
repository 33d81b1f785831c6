"""The CPU kernels split their work across threads: the same numbers with one thread and with two.

scripts/test.sh runs the suite in pytest-xdist workers of one thread each
(OMP_NUM_THREADS=1), so this file is where the kernels' threaded paths run;
it sets the thread count for its own checks and puts it back.
"""
from __future__ import annotations

import contextlib

import pytest
import torch

from lamfast.ops.baselines import op_contenders
from lamfast.ops.lam_objective import flat_windows

from conftest import assert_close, compiled


@contextlib.contextmanager
def threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _cases():
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(3, 96, 80, generator=gen)
    grads, deriv = torch.randn(20, 3, 96, 80, generator=gen), torch.randn(20, 3, 96, 80, generator=gen)
    yield "blur_path", {"image": image, "fold": 20}
    yield "path_accumulate", {"acc": torch.zeros(3, 96, 80), "grads": grads, "deriv": deriv}
    yield "kde_map", {"saliency": torch.rand(4, 96, 80, generator=gen) ** 8}
    yield "lam_objective", {"y": torch.rand(8, 3, 96, 80, generator=gen), "windows": flat_windows([(10, 12, 16)], 8)}


@pytest.mark.parametrize("op, data", list(_cases()), ids=[name for name, _ in _cases()])
def test_one_and_two_threads_give_the_twins_numbers(op, data):
    if not compiled(op, "cpu"):
        pytest.skip(f"no compiled {op} kernel: the twin is the op")
    call, baselines = op_contenders(op, **data)
    twin = next(iter(baselines.values()))()
    outputs = []
    for n in (1, 2):
        with threads(n):
            outputs.append(call())
    for one, two, want in zip(*(o if isinstance(o, (tuple, list)) else (o,) for o in (*outputs, twin))):
        assert_close(one, want, "twin")
        assert_close(two, want, "twin")
        assert_close(one, two, "twin")
