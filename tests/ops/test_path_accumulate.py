"""lamfast.path_accumulate: compiled kernel and twin against a plain loop over devices and dtypes, chunking, errors."""
from __future__ import annotations

import pytest
import torch

import lamfast
from lamfast.ops import path_accumulate_torch

from conftest import assert_close


def _data(acc_shape, steps, device, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lead, inner = acc_shape[:-3], acc_shape[-3:]
    grads = torch.randn(*lead, steps, *inner, generator=gen).to(device, dtype)
    deriv = torch.randn(*lead, steps, *inner, generator=gen).to(device, dtype)
    acc = torch.randn(*acc_shape, generator=gen).to(device)
    return acc, grads, deriv


def _loop(acc, grads, deriv):
    out = acc.double().clone()
    step_dim = grads.dim() - 4
    for j in range(grads.shape[step_dim]):
        out += grads.select(step_dim, j).double() * deriv.select(step_dim, j).double()
    return out


GOOD = (3, 4, 4)


class TestPathAccumulate:
    """lamfast.path_accumulate and its twin."""

    @pytest.mark.parametrize(
        "acc_shape,steps",
        [((3, 16, 16), 50), ((3, 1, 1), 3), ((1, 7, 5), 1), ((2, 3, 9, 11), 4), ((2, 2, 3, 5, 4), 3), ((3, 70, 90), 2)],
    )
    def test_compiled_and_twin_match_loop(self, device, acc_shape, steps):
        acc, grads, deriv = _data(acc_shape, steps, device)
        expected = _loop(acc, grads, deriv)
        out = lamfast.path_accumulate(acc.clone(), grads, deriv)
        twin = acc.clone()
        path_accumulate_torch(twin, grads, deriv)
        assert out.shape == acc.shape and out.dtype == torch.float32
        assert_close(out, expected, "accumulate")
        assert_close(twin, expected, "accumulate")
        assert_close(out, twin, "accumulate")

    def test_in_place_and_returns_acc(self, device):
        acc, grads, deriv = _data((3, 8, 8), 5, device)
        expected = _loop(acc, grads, deriv)
        ptr = acc.data_ptr()
        out = lamfast.path_accumulate(acc, grads, deriv)
        assert out is acc and acc.data_ptr() == ptr
        assert_close(acc, expected, "accumulate")

    def test_chunks_equal_whole_path(self, device):
        acc, grads, deriv = _data((3, 12, 12), 50, device)
        whole = lamfast.path_accumulate(acc.clone(), grads, deriv)
        chunked = acc.clone()
        for start in range(0, 50, 8):
            lamfast.path_accumulate(chunked, grads[start : start + 8], deriv[start : start + 8])
        assert_close(chunked, whole, "accumulate")

    def test_non_contiguous_everything(self, device):
        acc, grads, deriv = _data((3, 10, 14), 6, device)
        acc_t = acc.transpose(1, 2).contiguous().transpose(1, 2)  # same values, strided storage
        g = grads.transpose(2, 3).contiguous().transpose(2, 3)
        d = deriv[:, :, :, :]
        assert not acc_t.is_contiguous() and not g.is_contiguous()
        expected = _loop(acc, grads, deriv)
        lamfast.path_accumulate(acc_t, g, d)
        assert_close(acc_t, expected, "accumulate")

    @pytest.mark.parametrize("grad_dtype", [torch.float16, torch.bfloat16, torch.float64])
    def test_mixed_dtypes_accumulate_in_acc_dtype(self, device, grad_dtype):
        acc, grads, deriv = _data((3, 6, 6), 4, device, dtype=grad_dtype)
        out = lamfast.path_accumulate(acc.clone(), grads, deriv)
        assert out.dtype == torch.float32
        assert_close(out, _loop(acc, grads, deriv), "accumulate")

    def test_float64_accumulator(self, device):
        acc, grads, deriv = _data((3, 6, 6), 4, device, dtype=torch.float64)
        acc = acc.double()
        out = lamfast.path_accumulate(acc.clone(), grads, deriv)
        assert out.dtype == torch.float64
        assert_close(out, _loop(acc, grads, deriv), "accumulate")

    def test_does_not_track_gradients(self, device):
        acc, grads, deriv = _data((3, 4, 4), 2, device)
        grads.requires_grad_(True)
        out = lamfast.path_accumulate(acc, grads, deriv)
        assert not out.requires_grad

    @pytest.mark.parametrize(
        "acc,grads,deriv,match",
        [
            (torch.zeros(GOOD, dtype=torch.float16), torch.zeros(2, *GOOD), torch.zeros(2, *GOOD), "acc must be float32"),
            (torch.zeros(4, 4), torch.zeros(2, 4, 4), torch.zeros(2, 4, 4), r"acc must be \[\*lead"),
            (torch.zeros(GOOD), torch.zeros(2, *GOOD), torch.zeros(3, *GOOD), "same shape"),
            (torch.zeros(GOOD), torch.zeros(2, 3, 4, 5), torch.zeros(2, 3, 4, 5), "grads must be"),
            (torch.zeros(GOOD), torch.zeros(GOOD), torch.zeros(GOOD), "grads must be"),  # missing step dim
            (torch.zeros(GOOD), torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4), "grads must be"),  # no broadcasting
            (torch.zeros(GOOD), torch.zeros(2, *GOOD, dtype=torch.int32), torch.zeros(2, *GOOD), "floating"),
        ],
    )
    @pytest.mark.parametrize("fn", [lamfast.path_accumulate, path_accumulate_torch, torch.ops.lamfast.path_accumulate],
                             ids=["api", "twin", "op"])
    def test_bad_input(self, fn, acc, grads, deriv, match):
        before = acc.clone()
        with pytest.raises(ValueError, match=match) as info:
            fn(acc, grads, deriv)
        assert "\n" not in str(info.value).strip()
        assert torch.equal(acc, before)
