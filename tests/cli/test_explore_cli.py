"""lamfast explore: DI maps of one image through the dataset runner into a store it resumes from, and the
offline page (headless Chromium); the report's explorer pages for grid runs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import lamfast
from lamfast.cli import main
from lamfast.dataset.store import ResultStore
from lamfast.errors import LamfastError
from lamfast.models import EDSR, data_path
from lamfast.request import prepare_input

import browser


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
    assert data["scale"] == 4 and data["models"] == ["bundled", "edsr"] and len(data["windows"]) == 128
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


def test_explore_resumes_from_its_store_model_by_model(tmp_path, edsr, capsys):
    """A rerun with one more model computes only that model; its DI maps are the library's."""
    image = _astro128(tmp_path)
    ckpt = tmp_path / "edsr.pt"
    torch.save(edsr.state_dict(), ckpt)
    out = tmp_path / "o"
    argv = ["explore", str(image), "--window-size", "32", "--fold", "2", "--no-progress", "-o", str(out)]
    assert main([*argv, "--model", "base=bundled"]) == 0
    assert "1 models computed" in capsys.readouterr().out
    assert main([*argv, "--model", "base=bundled", "--model", f"edsr:{ckpt}"]) == 0
    printed = capsys.readouterr().out
    assert "1 models computed" in printed and "1 from the store" in printed
    data = json.loads((out / "explore.json").read_text())
    assert data["models"] == ["base", "edsr"] and len(data["windows"]) == 32
    x = prepare_input(edsr, image).tensor()
    want = lamfast.di_map(edsr, x, 32, fold=2)
    got = {(w["i"], w["j"]): w["di"] for w in data["windows"] if w["model"] == "edsr"}
    assert all(abs(got[(i, j)] - float(want.di[i, j])) <= 1e-6 * max(1.0, got[(i, j)])
               for i in range(4) for j in range(4))


def test_explore_refuses_bad_grids_and_mismatched_models_in_one_line(tmp_path, capsys):
    image = _astro128(tmp_path)
    for argv, match in [(["--window-size", "200"], "--window-size: window_size 200 is larger than the 128x128 SR image"),
                        (["--stride", "0"], "--stride: stride must be an integer >= 1")]:
        assert main(["explore", str(image), "--fold", "2", "--no-progress", "-o", str(tmp_path / "o"), *argv]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("lamfast: error:") and match in err[-1], err
    torch.manual_seed(0)
    torch.save(EDSR(n_resblocks=1, n_feats=8, scale=2, rgb_range=1.0).state_dict(), tmp_path / "x2.pt")
    assert main(["explore", str(image), "--model", "bundled", "--model", f"edsr:{tmp_path / 'x2.pt'}", "--fold", "2",
                 "--no-progress", "-o", str(tmp_path / "o")]) != 0
    assert "share one grid" in capsys.readouterr().err.strip().splitlines()[-1]


def _explorer_selftest(index, budget_ms=8000):
    """The explorer's selftest: it clicks cells and presses keys itself and writes what it showed after each
    step, then what it fetched."""
    steps = browser.selftest(index, budget_ms)
    assert steps[-1]["action"] == "loaded"
    return steps[:-1], steps[-1]


def test_the_page_answers_clicks_and_keys_in_headless_chromium(explored):
    steps, loaded = _explorer_selftest(explored / "index.html")
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
    shot = browser.screenshot((explored / "index.html").as_uri() + "#h=48&w=80", explored.parent / "shot.png")
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
    steps, loaded = _explorer_selftest(index)
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
