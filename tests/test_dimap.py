"""DI maps and the LAM explorer (P14): ``di_map`` against ``lam`` window by window, the grid rules,
resuming from the store, ``lamfast explore`` and its page in headless Chromium, and the report's
explorer pages for grid runs."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import lamfast
from lamfast.cli import main
from lamfast.dataset.dimap import grid_positions
from lamfast.dataset.store import ResultStore
from lamfast.errors import LamfastError
from lamfast.models import EDSR, bundled_model, data_path
from lamfast.request import prepare_input

from conftest import assert_close


@pytest.fixture(scope="module")
def tinysr():
    return bundled_model().model


@pytest.fixture(scope="module")
def lr32():
    """A 32x32 LR crop of the bundled astronaut (the bundled TinySR's input)."""
    sr_input = prepare_input(None, data_path("astronaut.png"), scale=4)
    return sr_input.tensor()[:, 8:40, 16:48].contiguous()


@pytest.fixture(scope="module")
def edsr():
    torch.manual_seed(0)
    return EDSR(n_resblocks=2, n_feats=8, scale=4, rgb_range=1.0).eval()


@pytest.mark.parametrize("crop", ["auto", "off"])
@pytest.mark.parametrize("which", ["tinysr", "edsr"])
def test_every_sampled_window_equals_lam(which, crop, request, lr32):
    model = request.getfixturevalue(which)
    dimap = lamfast.di_map(model, lr32, 16, fold=6, crop=crop, chunk=10)
    assert dimap.shape == (8, 8) and dimap.scale == 4 and not dimap.failures
    assert all((c.box is not None) == (crop == "auto") for c in dimap.crops)
    for i, j in [(0, 0), (7, 7), (3, 5), (6, 1)]:
        r = lamfast.lam(model, lr32, dimap.rows[i], dimap.cols[j], 16, fold=6, crop=crop)
        assert abs(r.di - float(dimap.di[i, j])) <= 1e-6 * max(1.0, abs(r.di))  # relative, DI can exceed 1
        assert int(dimap.nan_steps[i, j]) == r.nan_steps
        assert (dimap.saliency_map(i, j) - r.saliency).abs().max() <= 0.5 / 255 + 1e-6  # uint8 rounding


def test_grid_rules():
    assert grid_positions(64, 16, 16) == [0, 16, 32, 48]
    assert grid_positions(40, 16, 16) == [0, 16, 24]  # the last clamped inside, flush with the border
    assert grid_positions(40, 16, 8) == [0, 8, 16, 24]
    assert grid_positions(16, 16, 4) == [0]
    assert grid_positions(41, 8, 11) == [0, 11, 22, 33]
    for extent, size, stride in [(40, 16, 16), (57, 12, 5), (64, 32, 24)]:
        starts = grid_positions(extent, size, stride)
        covered = set().union(*(range(s, s + size) for s in starts))
        assert covered == set(range(extent)) and all(s + size <= extent for s in starts)
    for args, param in [((8, 16, 16), "window_size"), ((32, 1, 4), "window_size"), ((32, 8, 0), "stride")]:
        with pytest.raises(LamfastError) as err:
            grid_positions(*args)
        assert err.value.param == param


@pytest.mark.parametrize("size,stride,shape", [(8, None, (16, 16)), (16, 8, (15, 15)), (32, 48, (3, 3)),
                                               (24, None, (6, 6))])
def test_window_sizes_and_strides_make_the_grid(tinysr, lr32, size, stride, shape):
    dimap = lamfast.di_map(tinysr, lr32, size, stride, fold=2, keep_maps=False)
    assert dimap.shape == shape and dimap.saliency is None and dimap.window_size == size
    assert dimap.rows[-1] + size == 128 and dimap.cols[-1] + size == 128
    assert dimap.boxes[1] == (dimap.rows[0], dimap.cols[1], size)
    with pytest.raises(LamfastError, match="maps were not kept"):
        dimap.saliency_map(0, 0)


def test_a_stopped_run_resumes_from_the_store(tinysr, lr32, tmp_path, monkeypatch):
    import lamfast.dataset.dimap as dimap_module

    store = tmp_path / "grid.sqlite"
    whole = lamfast.di_map(tinysr, lr32, 16, fold=4)
    real, calls = dimap_module.lam_windows, []

    def stop_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(len(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(dimap_module, "lam_windows", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        lamfast.di_map(tinysr, lr32, 16, fold=4, store=store, chunk=16, name="astro")
    monkeypatch.setattr(dimap_module, "lam_windows", real)
    with ResultStore(store) as db:
        assert len(list(db.rows())) == 32  # the two chunks that finished
    resumed = lamfast.di_map(tinysr, lr32, 16, fold=4, store=store, chunk=16, name="astro")
    assert resumed.timings["resumed"] == 32 and resumed.timings["computed"] == 32
    assert_close(resumed.di, whole.di, "same_lam", dtype=torch.float32)
    assert torch.equal(resumed.saliency, whole.saliency)
    again = lamfast.di_map(tinysr, lr32, 16, fold=4, store=store, name="astro")
    assert again.timings["computed"] == 0 and torch.equal(again.di, resumed.di)
    other = lamfast.di_map(tinysr, lr32, 16, fold=5, store=store, name="astro", keep_maps=False)
    assert other.timings["computed"] == 64  # other parameters are another run
    with ResultStore(store) as db:
        rows = list(db.rows())
    assert len(rows) == 128 and {json.loads(r["params"])["windows"] for r in rows} == {"grid:16:16:clamped"}


class HalfBlind(nn.Module):
    """x2 bicubic of the right half only: windows of the left quarter have an all-zero attribution (the
    bicubic taps of the second quarter reach the right half)."""

    def forward(self, x):
        mask = torch.zeros_like(x)
        mask[..., x.shape[-1] // 2:] = 1
        return F.interpolate(x * mask, scale_factor=2, mode="bicubic", align_corners=False)


def test_failed_windows_are_recorded_and_the_others_kept(lr32):
    with pytest.warns(lamfast.LAMNaNWarning, match="12 of 16 windows had path steps with NaN") as caught:
        dimap = lamfast.di_map(HalfBlind(), lr32, 16, fold=3)
    assert len(caught) == 1 and caught[0].filename == __file__  # one warning, at the caller
    assert dimap.shape == (4, 4)
    assert set(dimap.failures) == {(i, 0) for i in range(4)}
    assert all("all zero" in why for why in dimap.failures.values())
    assert dimap.di[:, 0].isnan().all() and not dimap.di[:, 1:].isnan().any()
    assert (dimap.nan_steps[:, 0] == -1).all() and (dimap.nan_steps[:, 1:] >= 0).all()


def _astro128(tmp_path):
    path = tmp_path / "astro128.png"
    Image.open(data_path("astronaut.png")).crop((64, 32, 192, 160)).save(path)
    return path


@pytest.fixture()
def explored(tmp_path_factory, edsr):
    tmp = tmp_path_factory.mktemp("explore")
    ckpt = tmp / "edsr.pt"
    torch.save(edsr.state_dict(), ckpt)
    out = tmp / "out"
    code = main(["explore", str(_astro128(tmp)), "--model", "bundled", "--model", f"edsr:{ckpt}", "--fold", "4",
                 "--no-progress", "-o", str(out)])
    assert code == 0
    return out


def test_explore_writes_the_page_its_data_and_the_maps(explored, tinysr, capsys):
    data = json.loads((explored / "explore.json").read_text())
    assert data["scale"] == 4 and data["models"] == ["bundled", "edsr:edsr.pt"] and len(data["windows"]) == 128
    assert {k for k in data["windows"][0]} >= {"model", "h", "w", "size", "di", "gini", "crop"}
    assert all((explored / w["map"]).is_file() for w in data["windows"])
    assert data["engine"]["bundled"]["cropped"] == 64 and data["engine"]["bundled"]["failed"] == 0
    page = (explored / "index.html").read_text()
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page  # offline
    assert json.loads(page.split("<script id='data' type='application/json'>")[1].split("</script>")[0]) == data
    x = prepare_input(tinysr, explored.parent / "astro128.png").tensor()
    w = next(w for w in data["windows"] if w["model"] == "bundled" and (w["h"], w["w"]) == (48, 80))
    want = lamfast.lam(tinysr, x, 48, 80, 16, fold=4).di
    assert abs(want - w["di"]) <= 1e-6 * max(1.0, abs(want))


def test_explore_refuses_bad_grids_and_mismatched_models_in_one_line(tmp_path, capsys):
    image = _astro128(tmp_path)
    for argv, match in [(["--window-size", "200"], "--window-size: window_size 200 is larger than the SR image"),
                        (["--stride", "0"], "--stride: stride must be an integer >= 1")]:
        assert main(["explore", str(image), "--fold", "2", "--no-progress", "-o", str(tmp_path / "o"), *argv]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("lamfast: error:") and match in err[-1], err
    torch.manual_seed(0)
    torch.save(EDSR(n_resblocks=1, n_feats=8, scale=2, rgb_range=1.0).state_dict(), tmp_path / "x2.pt")
    assert main(["explore", str(image), "--model", "bundled", "--model", f"edsr:{tmp_path / 'x2.pt'}", "--fold", "2",
                 "--no-progress", "-o", str(tmp_path / "o")]) != 0
    assert "share one grid" in capsys.readouterr().err.strip().splitlines()[-1]


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _selftest(index, budget_ms=8000):
    """Open ``index#selftest`` in headless Chromium: the page clicks cells and presses keys itself and
    writes what it showed after each step, then what it fetched, into ``<pre id="selftest">``."""
    import html

    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed here (scripts/test.sh installs Debian's chromium where apt-get can)")
    dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={tempfile.mkdtemp()}", f"--virtual-time-budget={budget_ms}",
                          "--dump-dom", index.as_uri() + "#selftest"], capture_output=True, text=True,
                         timeout=180).stdout
    assert '<pre id="selftest">' in dom, dom[-2000:]
    start = dom.rindex('<pre id="selftest">') + len('<pre id="selftest">')
    steps = json.loads(html.unescape(dom[start:dom.index("</pre>", start)]))
    assert steps[-1]["action"] == "loaded"
    return browser, steps[:-1], steps[-1]


def test_the_page_answers_clicks_and_keys_in_headless_chromium(explored):
    browser, steps, loaded = _selftest(explored / "index.html")
    # two models, 7 distinct selections: 14 maps asked for of the 128 windows'
    assert loaded["maps"] == 14 and loaded["windows"] == 128 and loaded["in_page"] == loaded["drawn"] == 2, loaded
    data = json.loads((explored / "explore.json").read_text())
    di = {(w["model"], w["i"], w["j"]): w["di"] for w in data["windows"]}
    expected = ["0,0", "7,7", "4,2", "4,3", "5,3", "5,2", "4,2", "3,2"]
    assert [s["selected"] for s in steps] == expected
    for s in steps:
        i, j = map(int, s["selected"].split(","))
        for m in data["models"]:
            assert abs(s["di"][m] - di[(m, i, j)]) < 5e-5, (s, m)  # shown with 4 decimals
    assert steps[0]["hover"].startswith("bundled  h=0 w=0  DI ")
    shot = explored.parent / "shot.png"
    subprocess.run([browser, *FLAGS, f"--user-data-dir={tempfile.mkdtemp()}", "--window-size=1200,1000",
                    "--virtual-time-budget=5000", f"--screenshot={shot}", (explored / "index.html").as_uri() + "#h=48&w=80"],
                   capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.std() > 20 and (np.abs(pixels[..., 0] - pixels[..., 2]) > 40).mean() > 0.02  # maps in colour


def test_a_32x32_grid_of_two_models_loads_its_maps_on_demand(tmp_path):
    """1024 windows per model: the page draws both DI maps and the difference, answers clicks and
    keys, and fetches only the maps of the windows it showed."""
    from lamfast.dataset.explorer import ExplorerWindow, write_explorer

    lr = Image.open(data_path("astronaut.png")).convert("RGB").resize((128, 128), Image.BICUBIC)
    g = torch.Generator().manual_seed(0)
    windows = []
    for k, model in enumerate(["a", "b"]):
        di = torch.rand(32, 32, generator=g, dtype=torch.float64) * (k + 1)
        for i in range(32):
            for j in range(32):
                windows.append(ExplorerWindow(model, 16 * i, 16 * j, 16, float(di[i, j]), 0.5,
                                              saliency=torch.rand(128, 128, generator=g)))
    index = write_explorer(tmp_path / "big", "astronaut.png", lr, 4, windows)
    data = json.loads((tmp_path / "big" / "explore.json").read_text())
    assert len(data["windows"]) == 2048 and len(list((tmp_path / "big" / "maps").iterdir())) == 2048
    _, steps, loaded = _selftest(index)
    assert [s["selected"] for s in steps] == ["0,0", "31,31", "16,10", "16,11", "17,11", "17,10", "16,10", "15,10"]
    di = {(w["model"], w["i"], w["j"]): w["di"] for w in data["windows"]}
    for s in steps:
        i, j = map(int, s["selected"].split(","))
        assert all(abs(s["di"][m] - di[(m, i, j)]) < 5e-5 for m in "ab"), s
    # the maps the page asked for are those of the windows it showed, and the two shown are drawn
    assert loaded["windows"] == 2048 and loaded["maps"] == 14 and loaded["in_page"] == loaded["drawn"] == 2, loaded


def test_a_grid_run_in_the_report_gets_explorer_pages_and_gallery_links(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    _astro128(folder)
    store = tmp_path / "s.sqlite"
    assert main(["run", str(folder), "--windows", "grid:32", "--fold", "3", "--store", str(store),
                 "--no-progress"]) == 0
    report = tmp_path / "report"
    assert main(["report", str(store), "-o", str(report)]) == 0
    page = (report / "index.html").read_text()
    assert "<h3>Explorer</h3>" in page
    links = sorted({href.split("#")[0] for href in
                    (part.split("'")[0] for part in page.split("href='")[1:]) if href.startswith("explore/")})
    assert len(links) == 1 and (report / links[0]).is_file()
    assert "index.html#h=" in page  # the gallery figures open their window
    data = json.loads((report / links[0]).with_name("explore.json").read_text())
    with ResultStore(store) as db:
        stored = {(r["h"], r["w"]): r["di"] for r in db.rows()}
    assert {(w["h"], w["w"]): w["di"] for w in data["windows"]} == stored


def test_the_explorer_figure_is_the_abs_map_its_blend_and_the_kde_side_by_side(lr32):
    from lamfast import viz

    saliency = torch.rand(32, 32, generator=torch.Generator().manual_seed(1))
    lr = Image.fromarray((lr32.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    window = (40, 56, 16)
    cell = viz.window_figure(saliency, lr, 4, window, 100, panels=viz.FIGURE_PANELS)
    assert cell.size == (3 * 100 + 6, 100)
    panels = {"abs": viz.saliency_image(saliency, 4), "blend": viz.blend(viz.saliency_image(saliency, 4), lr, 0.5),
              "kde": viz.blend(viz.kde_image(saliency, 4), lr, 0.5)}
    for k, kind in enumerate(viz.FIGURE_PANELS):
        want = viz.window_crop(viz.window_image(panels[kind], *window), *window, 100)
        assert np.array_equal(np.asarray(cell.crop((103 * k, 0, 103 * k + 100, 100))), np.asarray(want)), kind
    # the report's two-panel cell is the last two of them
    two = viz.window_figure(saliency, lr, 4, window, 100)
    assert np.array_equal(np.asarray(two), np.asarray(cell.crop((103, 0, 3 * 100 + 6, 100))))
    with pytest.raises(LamfastError, match="panels must be some of"):
        viz.window_figure(saliency, lr, 4, window, 100, panels=("kde", "nope"))
