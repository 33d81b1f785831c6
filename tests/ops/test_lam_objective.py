"""lamfast.lam_objective: the fused LAM objective against its torch twin over devices and dtypes (values, ties,
gradients, NaN pattern), gradcheck, errors; and the LAM objective module's use of it."""
from __future__ import annotations

import pytest
import torch

import lamfast
from lamfast.lam.objective import exact_ties as objective_exact_ties
from lamfast.lam.objective import segment_objectives_and_ties, window_objectives
from lamfast.ops.lam_objective import exact_ties, flat_windows, lam_objective_backward_torch, lam_objective_torch

from conftest import compiled

# Relative to the largest magnitude: the kernel sums in another order than
# torch (values in double per plane), so they agree to rounding.
TOL = {torch.float32: 2e-6, torch.float64: 1e-13}

CASES = [
    ((5, 3, 20, 23), [(2, 3, 5)]),
    ((5, 3, 20, 23), [(2, 3, 5), (10, 15, 30), (0, 0, 100)]),  # K = 3, two clipped at the border
    ((5, 3, 20, 23), [[(i, i + 1, 4) for i in range(5)]]),  # a window per output
    ((4, 1, 33, 17), [(0, 0, 1), (16, 16, 8)]),
    ((3, 3, 1, 7), [(0, 0, 3)]),  # no rows of squared gradient
    ((3, 3, 7, 1), [(0, 0, 3)]),  # no columns
    ((2, 3, 40, 64), [(30, 50, 16), (45, 0, 3)]),  # second window outside G: value 0
]


def _rel(a, b):
    a, b = a.double(), b.double()
    finite = torch.isfinite(b)
    if not finite.any():
        return 0.0
    return ((a[finite] - b[finite]).abs().max() / b[finite].abs().max().clamp_min(1.0)).item()


def _compare(y, windows, robust):
    flat = flat_windows(windows, y.shape[0])
    value, ties = lamfast.lam_objective(y, windows, robust)
    ref_value, ref_ties = lam_objective_torch(y, flat, robust)
    assert value.shape == ref_value.shape and value.dtype == y.dtype
    assert torch.equal(ties, ref_ties)
    assert torch.equal(torch.isnan(value), torch.isnan(ref_value))
    assert _rel(value, ref_value) <= TOL[y.dtype]
    grad = torch.randn(value.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(3)).to(y.device)
    dy = torch.ops.lamfast.lam_objective_backward(grad, y, flat, robust)
    ref_dy = lam_objective_backward_torch(grad, y, flat, robust)
    # The NaN steps are decided by these positions: they must be torch's exactly.
    assert torch.equal(torch.isnan(dy), torch.isnan(ref_dy))
    assert _rel(dy, ref_dy) <= TOL[y.dtype]
    # ... and the twin's written-out backward is torch's autograd.
    leaf = y.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(lam_objective_torch(leaf, flat, robust)[0], leaf, grad)
    assert torch.equal(torch.isnan(auto), torch.isnan(ref_dy))
    assert _rel(ref_dy, auto) <= TOL[y.dtype]
    return ties, dy


class TestLAMObjectiveModule:
    """lamfast.lam.objective on top of the op."""

    def test_the_objective_module_runs_the_op_in_every_mode_but_official(self, device, dtype):
        """compat and robust run the fused op (the dispatcher's kernel or twin); official keeps torch's formulation."""
        import lamfast.lam.objective as objective

        y = torch.rand(2, 3, 8, 8, dtype=dtype).to(device)
        windows = [(1, 1, 4), (0, 2, 6)]
        calls = []
        real = objective.lam_objective

        def counted(*args, **kwargs):
            calls.append(1)
            return real(*args, **kwargs)

        objective.lam_objective = counted
        try:
            for mode in ("compat", "robust", "official"):
                calls.clear()
                want = lam_objective_torch(y, flat_windows(windows, 2), mode == "robust")[0]
                assert _rel(window_objectives(y, windows, mode), want) <= TOL[dtype]
                assert bool(calls) == (mode != "official"), mode
                value, ties = segment_objectives_and_ties(y, [(0, 1, (1, 1, 4)), (1, 2, (0, 2, 6))], mode, ties=True)
                assert _rel(value, torch.stack([want[0, 0], want[1, 1]])) <= TOL[dtype]
                assert torch.equal(ties, exact_ties(y))
        finally:
            objective.lam_objective = real

    def test_official_mode_keeps_the_torch_formulation(self):
        # Official results equal the official code bit for bit, so its sums stay torch's.
        y = torch.rand(2, 3, 30, 30, generator=torch.Generator().manual_seed(7))
        windows = [(3, 4, 16)]
        want = lam_objective_torch(y, flat_windows(windows, 2), False)[0]
        assert torch.equal(window_objectives(y, windows, "official"), want)


class TestLAMObjective:
    """lamfast.lam_objective and its twin."""

    @pytest.mark.parametrize("robust", [False, True], ids=["compat", "robust"])
    @pytest.mark.parametrize("shape,windows", CASES)
    def test_matches_twin(self, device, dtype, shape, windows, robust):
        y = torch.rand(shape, dtype=dtype, generator=torch.Generator().manual_seed(0)).to(device)
        _compare(y, windows, robust)

    @pytest.mark.parametrize("robust", [False, True], ids=["compat", "robust"])
    def test_exact_ties_and_nan_pattern_match_twin(self, device, dtype, robust):
        # Quantised outputs tie exactly: compat gradients are NaN where torch's are.
        y = ((torch.rand(4, 3, 16, 16, dtype=dtype, generator=torch.Generator().manual_seed(1)) * 4).round() / 4).to(device)
        ties, dy = _compare(y, [(2, 3, 5), (1, 1, 3)], robust)
        assert ties.all()
        y[1:] = torch.rand(3, 3, 16, 16, dtype=dtype, generator=torch.Generator().manual_seed(8)).to(device)
        assert torch.equal(objective_exact_ties(y), exact_ties(y)) and objective_exact_ties(y).tolist() == [True] + [False] * 3
        assert torch.isnan(dy).any() != robust

    def test_non_finite_outputs_match_twin(self, device, dtype):
        y = torch.rand(2, 3, 9, 9, dtype=dtype, generator=torch.Generator().manual_seed(2)).to(device)
        y[0, 1, 4, 4] = float("inf")
        y[1, 2, 2, 2] = float("nan")
        for robust in (False, True):
            _, dy = _compare(y, [(1, 1, 5)], robust)
            assert torch.isnan(dy).any()

    @pytest.mark.parametrize("robust", [False, True], ids=["compat", "robust"])
    def test_gradcheck(self, device, robust):
        y = torch.rand(2, 2, 7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4)).to(device)
        y.requires_grad_(True)
        windows = [(1, 1, 4), [(0, 2, 3), (2, 0, 9)]]
        assert torch.autograd.gradcheck(lambda t: lamfast.lam_objective(t, windows, robust)[0], (y,))

    def test_robust_equals_compat_bit_for_bit_without_ties(self, device, dtype):
        # The kernel's one formula serves both modes: where no sq is 0 they must
        # not differ at all. (torch's two formulations differ by rounding.)
        if not compiled("lam_objective", device):
            pytest.skip("no compiled lam_objective kernel on this device")
        y = torch.rand(3, 3, 12, 12, dtype=dtype, generator=torch.Generator().manual_seed(5)).to(device)
        flat = flat_windows([(2, 3, 5), (0, 0, 11)], 3)
        grad = torch.rand(2, 3, dtype=dtype).to(device)
        c = torch.ops.lamfast.lam_objective_backward(grad, y, flat, False)
        r = torch.ops.lamfast.lam_objective_backward(grad, y, flat, True)
        assert not exact_ties(y).any() and torch.equal(c, r)

    @pytest.mark.parametrize(
        "y,windows,match",
        [
            (torch.rand(3, 8, 8), [0, 0, 2], r"\[N, C, sH, sW\]"),
            (torch.rand(2, 3, 8, 8), [0, 0, 2], "K >= 1 windows"),
            (torch.rand(2, 3, 8, 8), [0, 0, 2, 0, 0], "K >= 1 windows"),
            (torch.rand(1, 3, 8, 8), [-1, 0, 2], "h, w >= 0 and size >= 1"),
            (torch.rand(1, 3, 8, 8), [0, 0, 0], "h, w >= 0 and size >= 1"),
        ],
    )
    def test_bad_input_raises_value_error(self, y, windows, match):
        """The op (its kernel or twin) and the twin called directly refuse it (the wrapper: below)."""
        for fn in (torch.ops.lamfast.lam_objective, lam_objective_torch):
            with pytest.raises(ValueError, match=match):
                fn(y, windows, False)

    @pytest.mark.parametrize("window", [(-1, 0, 2), (0, 0, 0)])
    def test_the_wrapper_refuses_bad_windows_in_one_line(self, window):
        with pytest.raises(lamfast.errors.LamfastError, match="h, w >= 0 and size >= 1") as info:
            lamfast.lam_objective(torch.rand(1, 3, 8, 8), [window])
        assert "\n" not in str(info.value)

    def test_other_dtypes_are_refused_by_the_wrapper(self):
        with pytest.raises(ValueError, match="float32 or float64"):
            lamfast.lam_objective(torch.rand(1, 3, 8, 8).half(), [(0, 0, 2)])

    def test_window_list_length_must_match_outputs(self):
        with pytest.raises(ValueError, match="one window per output"):
            lamfast.lam_objective(torch.rand(3, 3, 8, 8), [[(0, 0, 2), (0, 0, 2)]])
