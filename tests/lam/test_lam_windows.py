"""lamfast.lam_windows: each window equals lamfast.lam, over devices and dtypes; windows given, chosen from the SR
output or by a spec; the window specs (lamfast.lam.windows); errors per window."""
from __future__ import annotations

import warnings

import pytest
import torch

import lamfast
from lamfast.lam import LAMError, lam_windows
from lamfast.models import bundled_model
from lamfast.lam.windows import Grid, RandomWindows, TopEdges, WindowList, explicit, grid_positions, parse_windows

from conftest import LAM_TOLERANCE, assert_close, reference_model


@pytest.fixture(scope="module")
def model():
    return bundled_model().model


def _image(size=24, seed=0):
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))


class TestWindowSpecs:
    """lamfast.lam.windows: one definition of each spec."""

    def test_window_specs(self):
        assert explicit([(1, 2), (3, 4, 8)], 16) == [(1, 2, 16), (3, 4, 8)]
        sr = torch.zeros(3, 64, 48)
        g = Grid(16).resolve(sr)
        assert len(g) == 4 * 3 and g[0] == (0, 0, 16) and g[-1] == (48, 32, 16)
        r1, r2 = RandomWindows(5, 16, seed=3).resolve(torch.zeros(3, 64, 64)), RandomWindows(5, 16, 3).resolve(sr[:, :, :64])
        assert len(set(r1)) == 5 and all(h + 16 <= 64 and w + 16 <= 64 for h, w, _ in r1)
        assert parse_windows("grid:16:8") == Grid(16, 8) and parse_windows("grid:16:8").canonical == "grid:16:8"
        assert parse_windows("list:1,2;3,4:8") == WindowList(((1, 2, 8), (3, 4, 8)))
        assert parse_windows("top:4:16").k == 4 and parse_windows("random:3:16:7").seed == 7
        assert parse_windows("top:4:16", min_distance=0) == TopEdges(4, 16, None, 0) == parse_windows("top:4:16:8:0")
        assert TopEdges(4, 16) == TopEdges(4, 16, 8, 16) and Grid(16) == Grid(16, 16)  # defaults filled in
        for spec in ("grid:16:8", "list:1,2;3,4:8", "top:4:16", "top:4:16:4:0", "random:3:16:7"):
            parsed = parse_windows(spec)
            assert parse_windows(parsed.canonical).canonical == parsed.canonical  # the canonical text reads back
        for bad in ["grid", "top:4", "nope:1", "grid:a", "list:1:16", "top:4:16:1:2:3"]:
            with pytest.raises(lamfast.errors.LamfastError, match="bad window spec"):
                parse_windows(bad)
        for bad, param in [("grid:1", "window_size"), ("grid:16:0", "stride"), ("top:0:16", "k"), ("random:0:16", "n")]:
            with pytest.raises(lamfast.errors.LamfastError) as info:
                parse_windows(bad)
            assert info.value.param == param
        with pytest.raises(lamfast.errors.LamfastError, match="min_distance applies to top:K"):
            parse_windows("grid:16", min_distance=3)

    def test_one_grid_for_the_api_the_runner_and_the_di_map(self):
        """grid:SIZE[:STRIDE] covers every pixel: the last row and column are flush with the border."""
        assert grid_positions(64, 16, 16) == [0, 16, 32, 48]
        assert grid_positions(40, 16, 16) == [0, 16, 24]
        assert grid_positions(40, 16, 8) == [0, 8, 16, 24]
        assert grid_positions(16, 16, 4) == [0]
        assert grid_positions(41, 8, 11) == [0, 11, 22, 33]
        assert grid_positions(8, 16, 16) == []
        for extent, size, stride in [(40, 16, 16), (57, 12, 5), (64, 32, 24)]:
            starts = grid_positions(extent, size, stride)
            covered = set().union(*(range(s, s + size) for s in starts))
            assert covered == set(range(extent)) and all(s + size <= extent for s in starts)
        rows, cols = Grid(16).positions((40, 64))
        assert (rows, cols) == ([0, 16, 24], [0, 16, 32, 48])

    def test_top_edges_picks_the_strongest_window(self):
        sr = torch.zeros(3, 64, 64)
        sr[:, 40:48, 8:16] = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))  # texture here only
        (best,) = TopEdges(1, 16, stride=8).resolve(sr)
        h, w, _ = best
        assert h <= 40 <= h + 16 and w <= 8 <= w + 16
        assert parse_windows("top:2:16").resolve(sr)[0] == TopEdges(2, 16).resolve(sr)[0]


class TestLAMWindows:
    """lamfast.lam_windows."""

    @pytest.mark.parametrize("crop", ["auto", "off"])
    @pytest.mark.parametrize("mode", ["compat", "robust"])
    def test_each_window_equals_lam(self, model, mode, crop, dtype, device):
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

    def test_reference_case_windows(self, reference):
        m = reference_model(reference)
        lr = torch.from_numpy(reference["lr"])
        (r,) = lam_windows(m, lr, [(150, 110)], window_size=16)
        assert_close(r.attribution, reference["attribution"], "official")
        assert_close(r.di, float(reference["di"]), "official_di", dtype=torch.float32)

    def test_windows_in_groups_equal_windows_in_one(self, model, monkeypatch):
        """Windows run in groups that bound path memory; the group size changes nothing but speed."""
        import lamfast.lam.engine as engine

        x = _image(seed=1)
        windows = Grid(16, 40).resolve(torch.zeros(3, 96, 96))
        whole = lam_windows(model, x, windows, fold=6, crop="off")
        cropped = lam_windows(model, x, windows, fold=6)
        monkeypatch.setattr(engine, "GROUP_BYTES", 1)  # one window per group
        for crop, ref in (("off", whole), ("auto", cropped)):
            for a, b in zip(ref, lam_windows(model, x, windows, fold=6, crop=crop)):
                # other groups batch other path points together: float32 rounding only
                assert_close(a.attribution, b.attribution, "crop")
                assert a.crop == b.crop

    def test_nan_steps_are_counted_per_window(self):
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

    def test_bad_windows_raise_or_return(self, model):
        x = _image()
        with pytest.raises(LAMError, match="outside"):
            lam_windows(model, x, [(0, 0), (90, 0)], fold=3)
        out = lam_windows(model, x, [(0, 0), (90, 0), (0, 0, 1)], fold=3, errors="return")
        assert isinstance(out[0], lamfast.LAMResult)
        assert isinstance(out[1], LAMError) and "outside" in str(out[1])
        assert isinstance(out[2], LAMError) and "window_size" in str(out[2])
        assert lam_windows(model, x, [], fold=3) == []

    def test_windows_chosen_from_the_sr_output(self, model):
        x = _image()
        seen = []

        def choose(sr):
            seen.append(sr.shape)
            return TopEdges(2, 16).resolve(sr)

        chosen = lam_windows(model, x, choose, fold=3)
        assert seen == [(3, 96, 96)] and len(chosen) == 2
        assert [r.window for r in chosen] == TopEdges(2, 16).resolve(chosen[0].sr)
        by_spec = lam_windows(model, x, "top:2:16", fold=3)
        by_object = lam_windows(model, x, TopEdges(2, 16), fold=3)
        assert [r.window for r in by_spec] == [r.window for r in by_object] == [r.window for r in chosen]

    def test_window_values_must_be_integers(self, model):
        with pytest.raises(LAMError, match="h must be an integer"):
            lam_windows(model, _image(), [(1.5, 2)], fold=3)
        (r,) = lam_windows(model, _image(), [(torch.tensor(4), 8)], fold=3)  # integer tensors are integers
        assert r.window == (4, 8, 16)
