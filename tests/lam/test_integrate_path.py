"""The one path loop (lamfast.path.integrate_path) against closed forms and plain loops."""
from __future__ import annotations

import pytest
import torch

from lamfast.path import PathChunk, integrate_path


def _path(L=3, S=5, shape=(2, 4, 3), dtype=torch.float64, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    path = torch.rand(L, S, *shape, generator=g, dtype=torch.float64).to(device, dtype)
    deriv = torch.rand(L, S, *shape, generator=g, dtype=torch.float64).to(device, dtype)
    return path, deriv


@pytest.mark.parametrize("batch_size", [None, 1, 2, 4, 7, 15, 100])
def test_k_objectives_over_l_leads_equal_the_closed_form(batch_size, dtype, device):
    # objective_k(x) = Σ w_k · x²  =>  grad = 2 w_k x, integral = Σ_j 2 w_k γ_j γ'_j
    path, deriv = _path(dtype=dtype, device=device)
    w = torch.rand(2, *path.shape[2:], generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(device, dtype)
    done = []

    def objective(points, chunk):
        return torch.stack([(wk * points.pow(2)).flatten(1).sum(1) for wk in w])

    res = integrate_path(objective, path, deriv, batch_size=batch_size, on_chunk=done.append)
    expected = (2 * w[:, None, None] * path[None] * deriv[None]).sum(2)
    assert res.total.shape == (2, 3, *path.shape[2:]) and res.total.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    assert ((res.total - expected).abs().max() / expected.abs().max()).item() <= tol
    assert sum(done) == 15 and res.total.shape[:2] == (2, 3)
    assert res.nan_steps.tolist() == [[0, 0, 0], [0, 0, 0]]
    if batch_size is not None:
        assert res.batch_size == batch_size and done[0] == min(batch_size, 15)
    else:
        assert done[0] == 1  # the probe point goes alone


def test_chunk_tells_each_items_lead():
    path, deriv = _path(L=4, S=3)
    seen = []

    def objective(points, chunk: PathChunk):
        seen.append((chunk.start, chunk.stop, chunk.segments(), chunk.lead_index.tolist()))
        return points.flatten(1).sum(1)

    integrate_path(objective, path, deriv, batch_size=5)
    assert seen[0] == (0, 5, [(0, 0, 3), (1, 3, 5)], [0, 0, 0, 1, 1])
    assert seen[1] == (5, 10, [(1, 0, 1), (2, 1, 4), (3, 4, 5)], [1, 2, 2, 2, 3])
    assert seen[2] == (10, 12, [(3, 0, 2)], [3, 3])


def test_per_item_objectives_use_the_items_lead():
    # lead l's objective is Σ (l+1)·x: its gradient is l+1 everywhere
    path, deriv = _path(L=3, S=4)

    def objective(points, chunk):
        return points.flatten(1).sum(1) * (chunk.lead_index + 1).to(points.dtype)

    res = integrate_path(objective, path, deriv, batch_size=5)
    for lead in range(3):
        assert torch.allclose(res.total[0, lead], (lead + 1) * deriv[lead].sum(0))


def test_nan_entries_are_zeroed_and_counted_per_lead():
    path, deriv = _path(L=2, S=4)
    path[1, 2, 0, 0, 0] = 0.0  # sqrt'(0) = inf: NaN in one entry of one point of lead 1

    def objective(points, chunk):
        flat = points.flatten(1)
        # Σx plus 0·sqrt(first entry), whose gradient is 0·inf = NaN where that entry is 0
        return flat.sum(1) + 0 * flat[:, 0].sqrt()

    res = integrate_path(objective, path, deriv, batch_size=3)
    assert res.nan_steps.tolist() == [[0, 1]]
    assert torch.isfinite(res.total).all()
    ones = deriv.sum(1)  # the gradient is 1 everywhere but there
    assert torch.allclose(res.total[0, 0], ones[0])
    expected = ones[1].clone()
    expected[0, 0, 0] -= deriv[1, 2, 0, 0, 0]  # exactly the NaN entry of that point is lost
    assert torch.allclose(res.total[0, 1], expected)

    kept = integrate_path(objective, path, deriv, batch_size=3, zero_nan=False)
    assert torch.isnan(kept.total[0, 1, 0, 0, 0]) and kept.nan_steps.sum() == 0


def test_models_that_edit_their_input_in_place_are_safe():
    path, deriv = _path(L=1, S=3)
    original = path.clone()
    integrate_path(lambda x, chunk: x.mul_(2).flatten(1).sum(1), path, deriv, batch_size=2)
    assert torch.equal(path, original)


@pytest.mark.parametrize("bad", [dict(path=torch.rand(2, 3, 4)), dict(batch_size=0), dict(batch_size=1.5)])
def test_bad_arguments(bad):
    path, deriv = _path()
    args = {"path": path, "deriv": deriv, **bad}
    if "path" in bad:
        args["deriv"] = bad["path"]
    with pytest.raises(ValueError, match="integrate_path"):
        integrate_path(lambda x, c: x.sum(), args["path"], args["deriv"], batch_size=args.get("batch_size"))


def test_a_chunk_out_of_device_memory_is_halved_and_the_sum_is_unchanged():
    """integrate_path's safety net: an OutOfMemoryError raised before a chunk
    adds anything halves the chunk; the integral is the same."""
    from lamfast.path import _OOM

    gen = torch.Generator().manual_seed(5)
    path = torch.rand(2, 7, 1, 3, 3, generator=gen, dtype=torch.float64)
    deriv = torch.rand(2, 7, 1, 3, 3, generator=gen, dtype=torch.float64)
    sizes = []

    def objective(points, chunk):
        sizes.append(points.shape[0])
        if points.shape[0] > 3:
            raise _OOM("simulated: chunk too large")
        return (points ** 2).flatten(1).sum(1)

    got = integrate_path(objective, path, deriv, batch_size=14)
    want = integrate_path(lambda p, c: (p ** 2).flatten(1).sum(1), path, deriv, batch_size=1)
    assert sizes[:3] == [14, 7, 3] and max(sizes[3:]) <= 3
    assert got.batch_size == 3
    torch.testing.assert_close(got.total, want.total, rtol=1e-12, atol=1e-12)


def test_out_of_memory_at_one_point_is_raised():
    from lamfast.path import _OOM

    def objective(points, chunk):
        raise _OOM("simulated")

    with pytest.raises(_OOM):
        integrate_path(objective, torch.rand(1, 3, 1, 2, 2), torch.rand(1, 3, 1, 2, 2), batch_size=2)
