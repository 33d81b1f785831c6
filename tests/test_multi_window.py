"""lam_windows equals lam per window; window specs."""
from __future__ import annotations

import warnings

import pytest
import torch

import lamfast
from lamfast.lam import LAMError, lam_windows
from lamfast.models import bundled_model
from lamfast.lam.windows import explicit, grid, parse_spec, random_windows, resolve, top_edges

from conftest import LAM_TOLERANCE, assert_close, reference_model


@pytest.fixture(scope="module")
def model():
    return bundled_model().model


def _image(size=24, seed=0):
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("crop", ["auto", "off"])
@pytest.mark.parametrize("mode", ["compat", "robust"])
def test_each_window_equals_lam(model, mode, crop, dtype, device):
    model = bundled_model().model.to(device, dtype)
    x = _image(32).to(device, dtype)
    windows = [(0, 0, 16), (40, 24, 16), (80, 80, 16), (10, 70, 8), (0, 120, 8), (112, 3, 16)]
    results = lam_windows(model, x, windows, fold=8, mode=mode, crop=crop)
    tol = LAM_TOLERANCE[dtype]
    for (h, w, s), r in zip(windows, results):
        ref = lamfast.lam(model, x, h, w, s, fold=8, mode=mode, crop=crop)
        assert r.window == (h, w, s) and (r.crop.box is None) == (crop == "off")
        assert r.attribution.dtype == dtype and r.attribution.device == x.device
        peak = ref.attribution.abs().max().item()
        assert (r.attribution - ref.attribution).abs().max().item() <= tol["attribution"] * peak
        assert (r.saliency - ref.saliency).abs().max().item() <= tol["saliency"]
        assert abs(r.di - ref.di) <= tol["di"]
        assert torch.equal(r.sr, ref.sr)


def test_reference_case_windows(reference):
    m = reference_model(reference)
    lr = torch.from_numpy(reference["lr"])
    (r,) = lam_windows(m, lr, [(150, 110)], window_size=16)
    assert_close(r.attribution, reference["attribution"], "official")
    assert_close(r.di, float(reference["di"]), "official_di", dtype=torch.float32)


def test_batched_backward_equals_one_per_window(model):
    x = _image(seed=1)
    windows = grid((96, 96), 16, 40)
    # window_batch acts on the whole-image path, where windows share each forward
    looped = lam_windows(model, x, windows, fold=6, window_batch=1, crop="off")
    batched = lam_windows(model, x, windows, fold=6, window_batch=3, batch_size=2, crop="off")
    for a, b in zip(looped, batched):  # chunks differ (6 vs 2 points): float32 rounding only
        assert_close(a.attribution, b.attribution, "crop")


def test_nan_steps_are_counted_per_window():
    class Bilinear2x(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    x = _image()
    x[:, :, :12] = 0.5
    windows = [(10, 14, 16), (10, 30, 16)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = lam_windows(Bilinear2x(), x, windows, fold=8)
        for (h, w, s), r in zip(windows, results):
            ref = lamfast.lam(Bilinear2x(), x, h, w, s, fold=8)
            assert r.nan_steps == ref.nan_steps
            assert_close(r.attribution, ref.attribution, "same_lam")


def test_bad_windows_raise_or_return(model):
    x = _image()
    with pytest.raises(LAMError, match="outside"):
        lam_windows(model, x, [(0, 0), (90, 0)], fold=3)
    out = lam_windows(model, x, [(0, 0), (90, 0), (0, 0, 1)], fold=3, errors="return")
    assert isinstance(out[0], lamfast.LAMResult)
    assert isinstance(out[1], LAMError) and "outside" in str(out[1])
    assert isinstance(out[2], LAMError) and "window_size" in str(out[2])
    assert lam_windows(model, x, [], fold=3) == []


def test_windows_chosen_from_the_sr_output(model):
    x = _image()
    seen = []

    def choose(sr):
        seen.append(sr.shape)
        return top_edges(sr, 16, 2)

    chosen = lam_windows(model, x, choose, fold=3)
    assert seen == [(3, 96, 96)] and len(chosen) == 2
    assert [r.window for r in chosen] == top_edges(chosen[0].sr, 16, 2)


def test_window_values_must_be_integers(model):
    with pytest.raises(LAMError, match="h must be an integer"):
        lam_windows(model, _image(), [(1.5, 2)], fold=3)
    (r,) = lam_windows(model, _image(), [(torch.tensor(4), 8)], fold=3)  # integer tensors are integers
    assert r.window == (4, 8, 16)


def test_window_specs():
    assert explicit([(1, 2), (3, 4, 8)], 16) == [(1, 2, 16), (3, 4, 8)]
    g = grid((64, 48), 16, 16)
    assert len(g) == 4 * 3 and g[0] == (0, 0, 16) and g[-1] == (48, 32, 16)
    r1, r2 = random_windows((64, 64), 16, 5, seed=3), random_windows((64, 64), 16, 5, seed=3)
    assert r1 == r2 and len(set(r1)) == 5 and all(h + 16 <= 64 and w + 16 <= 64 for h, w, _ in r1)
    assert parse_spec("grid:16:8") == {"kind": "grid", "size": 16, "stride": 8}
    assert parse_spec("list:1,2;3,4:8")["windows"] == [(1, 2, 8), (3, 4, 8)]
    assert parse_spec("top:4:16")["k"] == 4 and parse_spec("random:3:16:7")["seed"] == 7
    for bad in ["grid", "top:4", "nope:1", "grid:a"]:
        with pytest.raises(ValueError, match="bad window spec"):
            parse_spec(bad)


def test_top_edges_picks_the_strongest_window():
    sr = torch.zeros(3, 64, 64)
    sr[:, 40:48, 8:16] = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))  # texture here only
    (best,) = top_edges(sr, 16, 1, stride=8)
    h, w, _ = best
    assert h <= 40 <= h + 16 and w <= 8 <= w + 16
    assert resolve(parse_spec("top:2:16"), sr)[0] == top_edges(sr, 16, 2)[0]
