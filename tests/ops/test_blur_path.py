"""lamfast.blur_path: smoke and reference parity, compiled kernel vs twin over devices and dtypes, gradients, errors."""
from __future__ import annotations

import pytest
import torch

import lamfast
from lamfast.ops import blur_path_torch

from conftest import assert_close, compiled


CASES = [
    # (shape, fold, sigma, l)
    ((3, 32, 32), 50, 1.2, 9),
    ((3, 1, 1), 5, 1.2, 9),  # a single pixel: reflection degenerates to the pixel itself
    ((1, 7, 5), 4, 2.5, 9),  # pad (4) larger than the image: cv2-style repeated reflection
    ((3, 17, 23), 7, 0.8, 5),
    ((2, 3, 9, 11), 6, 1.2, 9),  # batch
    ((4, 12, 10), 1, 3.0, 1),  # l = 1: no blur at all
    ((3, 10, 10), 3, 0.0, 7),  # sigma = 0: every step is the image
]


class TestBlurPath:
    """lamfast.blur_path and its twin."""

    def test_matches_official_reference(self, reference):
        lr = torch.from_numpy(reference["lr"])
        path, deriv = lamfast.blur_path(lr, int(reference["fold"]), float(reference["sigma"]), int(reference["l"]))
        steps = torch.from_numpy(reference["path_steps"])
        assert path.shape == deriv.shape == (50, 3, 64, 64)
        assert_close(path[steps], reference["path"], "official_path")
        assert_close(deriv[steps], reference["deriv"], "official_path")
        assert torch.equal(path[-1], lr)  # sigma_fold = 0 is an exact delta

    def test_twin_matches_official_reference(self, reference):
        lr = torch.from_numpy(reference["lr"])
        path, deriv = blur_path_torch(lr)
        steps = torch.from_numpy(reference["path_steps"])
        assert_close(path[steps], reference["path"], "official_path")
        assert_close(deriv[steps], reference["deriv"], "official_path")

    @pytest.mark.parametrize("shape,fold,sigma,l", CASES)
    def test_compiled_matches_twin(self, device, shape, fold, sigma, l):
        if not compiled("blur_path", device):
            pytest.skip(f"no compiled blur_path kernel on {device}: the op would be the twin itself")
        x = torch.rand(shape, generator=torch.Generator().manual_seed(1)).to(device)
        path, deriv = lamfast.blur_path(x, fold, sigma, l)
        tpath, tderiv = blur_path_torch(x, fold, sigma, l)
        expected = (*shape[:-3], fold, *shape[-3:])
        assert path.shape == deriv.shape == expected
        assert path.device == x.device and path.dtype == x.dtype
        assert_close(path, tpath, "twin")
        assert_close(deriv, tderiv, "twin")

    @pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
    def test_dtypes(self, device, dtype):
        x = torch.rand(3, 13, 11, generator=torch.Generator().manual_seed(2)).to(device, dtype)
        path, deriv = lamfast.blur_path(x, 8)
        assert path.dtype == deriv.dtype == dtype
        ref_path, ref_deriv = blur_path_torch(x.double(), 8)
        assert_close(path, ref_path, "twin")
        assert_close(deriv, ref_deriv, "twin")  # relative to its peak: deriv carries the factor fold

    def test_non_contiguous_input(self, device):
        base = torch.rand(3, 20, 30, generator=torch.Generator().manual_seed(3)).to(device)
        x = base.transpose(1, 2)  # [3, 30, 20] view, not contiguous
        assert not x.is_contiguous()
        path, deriv = lamfast.blur_path(x, 5)
        tpath, tderiv = blur_path_torch(x.contiguous(), 5)
        assert_close(path, tpath, "twin")
        assert_close(deriv, tderiv, "twin")

    def test_batch_equals_per_image(self, device):
        x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(4)).to(device)
        path, deriv = lamfast.blur_path(x, 6)
        for b in range(3):
            p, d = lamfast.blur_path(x[b], 6)
            assert torch.equal(path[b], p) and torch.equal(deriv[b], d)

    def test_derivative_telescopes(self, device):
        # sum_j deriv_j / fold = gamma_fold - gamma_0 = image - blur_sigma(image)
        x = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(5)).to(device, torch.float64)
        path, deriv = lamfast.blur_path(x, 10, 1.5, 9)
        start, _ = lamfast.blur_path(x, 1, 0.0, 9)  # identity
        first_blur = path[0] - deriv[0] / 10  # gamma_0
        assert torch.allclose(deriv.sum(0) / 10, start[0] - first_blur, atol=1e-10)
        assert torch.allclose(path[-1], x)

    def test_channels_share_one_kernel(self, device):
        x = torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(6)).to(device)
        path, _ = lamfast.blur_path(x.expand(3, 12, 12), 4)
        assert torch.equal(path[:, 0], path[:, 1]) and torch.equal(path[:, 0], path[:, 2])

    @pytest.mark.parametrize("fn", [lamfast.blur_path, blur_path_torch], ids=["op", "twin"])
    def test_gradcheck(self, device, fn):
        x = torch.rand(2, 6, 5, dtype=torch.float64, device=device, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: fn(t, 4, 1.1, 5), (x,))

    def test_gradcheck_batched_and_second_order(self, device):
        x = torch.rand(2, 1, 4, 3, dtype=torch.float64, device=device, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: lamfast.blur_path(t, 3, 0.9, 3), (x,))
        assert torch.autograd.gradgradcheck(lambda t: lamfast.blur_path(t, 2, 0.9, 3), (x,))

    @pytest.mark.parametrize(
        "args,match",
        [
            ((torch.rand(5),), "image must be"),
            ((torch.rand(2, 3, 4, 5, 6),), "image must be"),
            ((torch.randint(0, 255, (3, 8, 8)),), "floating"),
            ((torch.rand(3, 8, 8), 0), "fold"),
            ((torch.rand(3, 8, 8), 2.5), "fold"),
            ((torch.rand(3, 8, 8), 5, -0.1), "sigma"),
            ((torch.rand(3, 8, 8), 5, float("nan")), "sigma"),
            ((torch.rand(3, 8, 8), 5, float("inf")), "sigma"),
            ((torch.rand(3, 8, 8), 5, float("-inf")), "sigma"),
            ((torch.rand(3, 8, 8), 5, 1.0, 8), "l must be"),
            ((torch.rand(3, 8, 8), 5, 1.0, 0), "l must be"),
            ((torch.rand(3, 0, 8),), "H, W"),
        ],
    )
    @pytest.mark.parametrize("fn", [lamfast.blur_path, blur_path_torch, torch.ops.lamfast.blur_path], ids=["api", "twin", "op"])
    def test_bad_input(self, fn, args, match):
        """Each layer refuses what it is given: the wrapper (one line naming the argument), the kernel or twin
        and the fake (for direct torch.ops calls)."""
        if fn is not lamfast.blur_path and len(args) > 1 and isinstance(args[1], float):
            pytest.skip("fold is an int in the op's schema: a float fold reaches only the Python wrapper")
        with pytest.raises(ValueError, match=match) as info:
            fn(*args)
        assert "\n" not in str(info.value).strip()

    def test_the_wrapper_names_the_argument(self):
        with pytest.raises(lamfast.errors.LamfastError) as info:
            lamfast.blur_path(torch.rand(3, 8, 8), 5, 1.0, 8)
        assert info.value.param == "l"

    def test_smoke(self):
        path, deriv = lamfast.blur_path(torch.rand(3, 16, 16), fold=10)
        assert path.shape == deriv.shape == (10, 3, 16, 16) and bool(torch.isfinite(path).all())
