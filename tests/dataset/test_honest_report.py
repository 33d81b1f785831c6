"""Comparisons that hold: models whose LR inputs differ in size (other scales) are never paired on DI, every table
shows each model's LR size, and the fold's discretisation error |DI - DI at fold/2| sits beside the DI and is
flagged where it is large against a difference."""
from __future__ import annotations

import html
import re

import numpy as np
import pytest
import torch

import lamfast
from lamfast.dataset import ResultStore, RunConfig, run, write_report
from lamfast.dataset.report import _pair
from lamfast.dataset.stats import discretisation_error, not_paired, paired, paired_images

from conftest import astronaut_images


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from lamfast.models import EDSR

    tmp = tmp_path_factory.mktemp("honest")
    images = astronaut_images(tmp / "imgs", {"a.png": (0, 0, 128, 128), "b.png": (64, 64, 192, 192)})
    torch.manual_seed(0)
    x2, x4 = tmp / "x2.pt", tmp / "x4.pt"
    torch.save(EDSR(n_resblocks=1, n_feats=8, scale=2, rgb_range=1.0).state_dict(), x2)
    torch.save(EDSR(n_resblocks=1, n_feats=8, scale=4, rgb_range=1.0).state_dict(), x4)
    path = tmp / "s.sqlite"
    run([str(images)], ["TinySR=bundled", f"X2={x2}", f"X4={x4}"], path,
        RunConfig(windows="list:16,16;64,48:16", lam=lamfast.LAMParams(fold=4)), progress=False)
    with ResultStore(path) as db:
        rows = [r for r in db.rows() if r["status"] == "ok"]
    return {"path": path, "rows": rows, "tmp": tmp}


def _of(rows, model):
    return [r for r in rows if r["model"] == model]


def test_models_of_other_scales_are_not_paired(store):
    rows = store["rows"]
    assert {r["lr_size"] for r in _of(rows, "TinySR")} == {"32x32"} and {r["lr_size"] for r in _of(rows, "X2")} == {"64x64"}
    assert paired(_of(rows, "TinySR"), _of(rows, "X2")) is None
    assert paired_images(_of(rows, "TinySR"), _of(rows, "X2")) is None
    reason = not_paired(_of(rows, "TinySR"), _of(rows, "X2"))
    assert reason.startswith("4 windows not compared: LR 32x32 against 64x64")
    same = paired(_of(rows, "TinySR"), _of(rows, "X4"))
    assert same["n"] == 4 and not_paired(_of(rows, "TinySR"), _of(rows, "X4")) is None


def test_the_page_and_the_tables_say_so(store):
    out = store["tmp"] / "report"
    index = write_report(store["path"], out, formats="html,tex")
    page = html.unescape(index.read_text())
    assert "TinySR and X2: 4 windows not compared: LR 32x32 against 64x64" in page
    assert "X2 and X4: 4 windows not compared: LR 64x64 against 32x32" in page
    # the per-image table gives each model's own LR size
    assert "X2 LR size" in page and "TinySR LR size" in page
    tex = next((out / "tables").glob("*_paired.tex")).read_text()
    assert "not compared" in tex and "fold 4, sigma 1.2, kernel 9" in tex
    models_tex = next((out / "tables").glob("*_di_per_model.tex")).read_text()
    assert "64x64" in models_tex and "32x32" in models_tex


def test_the_discretisation_error_is_beside_the_di(store):
    rows = store["rows"]
    assert all(r["di_fold_half"] is not None and r["completeness"] is not None for r in rows)
    out = store["tmp"] / "report_e"
    page = write_report(store["path"], out).read_text()
    table = page[page.index("<table id='models-"):]
    table = table[:table.index("</table>")]
    for model in ("TinySR", "X2", "X4"):
        row = re.search(rf"<tr><td class='name'>{model}</td>(.*?)</tr>", table).group(1)
        values = [float(v) for v in re.findall(r"data-v='([-\d.e]+)'", row)]
        assert pytest.approx(discretisation_error(_of(rows, model)), rel=1e-9) in values


def _rows(di_a, di_b, half_gap):
    make = lambda model, di: {"image": "x.png", "h": 0, "w": 0, "size": 16, "lr_size": "32x32", "model": model,  # noqa: E731
                              "di": di, "di_fold_half": di + half_gap}
    return [make("A", d) for d in di_a], [make("B", d) for d in di_b]


def test_a_difference_within_the_discretisation_error_is_flagged():
    a, b = _rows([1.00], [1.02], 0.05)
    a += [{**a[0], "h": 16, "di": 1.10, "di_fold_half": 1.15}]
    b += [{**b[0], "h": 16, "di": 1.11, "di_fold_half": 1.16}]
    pair = _pair("A", "B", a, b)
    assert pair["error"] == pytest.approx(0.05) and "rerun at a larger fold" in pair["warn"]
    a, b = _rows([1.0], [1.5], 0.001)
    a += [{**a[0], "h": 16, "di": 2.0, "di_fold_half": 2.001}]
    b += [{**b[0], "h": 16, "di": 2.6, "di_fold_half": 2.601}]
    assert _pair("A", "B", a, b)["warn"] is None


def test_plot_ticks_are_round_and_the_scatter_has_error_bars(store):
    page = write_report(store["path"], store["tmp"] / "report_t").read_text()
    for svg in re.findall(r"<svg class=\"(?:hist|scatter)\".*?</svg>", page, re.S):
        ticks = [float(t) for t in re.findall(r'text-anchor="(?:middle|end)">(-?[\d.]+)</text>', svg)]
        assert len(ticks) >= 2
        steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:]) if b > a}
        for step in steps:  # 1, 2, 2.5 or 5 times a power of ten
            mantissa = step / 10 ** np.floor(np.log10(step))
            assert min(abs(mantissa - m) for m in (1, 2, 2.5, 5, 10)) < 1e-6, (ticks, step)
    scatter = re.search(r'<svg class="scatter".*?</svg>', page, re.S).group(0)
    assert len(re.findall(r'<line class="ci"', scatter)) == 3 and "95% CI" in scatter


def test_the_lam_figure_picks_windows_by_disagreement_only_within_one_lr_size(store):
    page = html.unescape(write_report(store["path"], store["tmp"] / "report_f").read_text())
    # TinySR and X4 share LR sizes, X2 does not: no window has one size for all three models
    assert "The models saw LR inputs of different sizes in every window shown" in page
