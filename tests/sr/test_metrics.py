"""gini / diffusion_index against the official numpy formula."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lamfast

from conftest import assert_close


def official_gini(array: np.ndarray) -> float:
    """LAM_Demo's gini, verbatim in float64."""
    array = array.flatten().astype(np.float64)
    if np.amin(array) < 0:
        array -= np.amin(array)
    array += 0.0000001
    array = np.sort(array)
    index = np.arange(1, array.shape[0] + 1)
    n = array.shape[0]
    return (np.sum((2 * index - n - 1) * array)) / (n * np.sum(array))


@pytest.mark.parametrize("seed", range(4))
def test_matches_official(seed):
    rng = np.random.default_rng(seed)
    m = rng.random((17, 23)) ** (seed + 1)
    assert_close(float(lamfast.gini(torch.from_numpy(m))), official_gini(m), "formula", dtype=torch.float64)
    assert_close(float(lamfast.diffusion_index(torch.from_numpy(m))), (1 - official_gini(m)) * 100, "official_di", dtype=torch.float64)


def test_negative_values_are_shifted():
    m = np.random.default_rng(5).normal(size=(9, 9))
    assert_close(float(lamfast.gini(torch.from_numpy(m))), official_gini(m), "formula", dtype=torch.float64)


def test_batched_over_leading_dims():
    maps = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    maps[0, 1] -= 0.7  # one map with negatives shifts alone
    out = lamfast.gini(maps)
    assert out.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert_close(out[i, j].item(), official_gini(maps[i, j].numpy()), "formula", dtype=torch.float64)
    assert lamfast.diffusion_index(maps).shape == (2, 3)


def test_extremes():
    delta = torch.zeros(10, 10)
    delta[3, 3] = 1
    assert lamfast.gini(delta).item() > 0.98
    assert_close(lamfast.gini(torch.ones(10, 10)).item(), 0.0, "formula", dtype=torch.float64)


@pytest.mark.parametrize("bad", [torch.rand(5), torch.zeros(0, 3), torch.tensor([[1.0, float("nan")]])])
def test_bad_input(bad):
    with pytest.raises(ValueError, match="gini"):
        lamfast.gini(bad)
