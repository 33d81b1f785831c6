"""``run --method cem``: causal effect maps of every window as its ROI, stored beside LAM rows, resumed,
merged, exported and compared in the report."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import lamfast
from lamfast.cem.params import CEMParams
from lamfast.cli import main
from lamfast.dataset import ResultStore, RunConfig, export, merge, run, write_report
from lamfast.errors import LamfastError
from lamfast.imageio import prepare_images, read_rgb, to_tensor
from lamfast.lam import LAMParams
from lamfast.models import bundled_model

from conftest import astronaut_crops

import browser

CEM = RunConfig(windows="list:8,8;32,24:16", method="cem", cem=CEMParams(fine=3))
LAM = RunConfig(windows="list:8,8;32,24:16", lam=LAMParams(fold=2))


@pytest.fixture()
def images(tmp_path) -> Path:
    folder = tmp_path / "imgs"
    astronaut_crops(folder, 2, 64, (37, 23))
    return folder


def _cem_rows(store) -> dict:
    with ResultStore(store) as db:
        return {r["key"]: r for r in db.rows(with_maps=True, method="cem")}


def test_cem_rows_equal_the_library_call_and_sit_beside_lam_rows(images, tmp_path):
    store = tmp_path / "s.sqlite"
    summary = run([str(images)], ["bundled"], store, CEM, progress=False)
    assert (summary.units_done, summary.units_failed, summary.windows_done) == (2, 0, 4)
    rows = _cem_rows(store)
    assert len(rows) == 4 and all(r["status"] == "ok" and r["method"] == "cem" for r in rows.values())
    r = next(r for r in rows.values() if r["key"].endswith("|32,24,16") and r["image"].endswith("img01.png"))
    hr, lr = prepare_images(read_rgb(images / "img01.png")[0], 4)
    ref = lamfast.cem(bundled_model().model, to_tensor(lr), np.asarray(hr), 32, 24, 16, fine=3)
    np.testing.assert_array_equal(r["attribution"], ref.effect.astype(np.float32))
    assert r["cem"]["counts"] == ref.counts and r["cem"]["psnr"] == ref.psnr and r["di"] is None
    assert r["cem"]["official_forwards"] == ref.official_forwards
    # LAM rows of the same windows into the same store: other units, other rows
    run([str(images)], ["bundled"], store, LAM, progress=False)
    with ResultStore(store) as db:
        lam_rows = list(db.rows())
        every = list(db.rows(method=None))
    assert len(lam_rows) == 4 and all(r["method"] == "lam" and r["di"] is not None for r in lam_rows)
    assert len(every) == 8 and len(_cem_rows(store)) == 4
    # a rerun resumes: nothing left to do
    again = run([str(images)], ["bundled"], store, CEM, progress=False)
    assert again.units_done == 0 and again.units_skipped == 2


def test_cem_keys_hold_its_parameters_and_lam_keys_are_unchanged():
    assert CEM.params_hash() != RunConfig(windows=CEM.windows, method="cem", cem=CEMParams(fine=4)).params_hash()
    assert CEM.params_hash() != RunConfig(windows=CEM.windows, method="cem", cem=CEMParams(fine=3, seed=1)).params_hash()
    # LAM's parameter hashes are those stores written before CEM came hold (resume needs them)
    assert "method" not in RunConfig().params()
    assert RunConfig().params_hash() == "5c5bb388d98971f8"
    assert RunConfig(windows="grid:32", lam=LAMParams(fold=2)).params_hash() == "a2eab312d709edc8"


@pytest.mark.parametrize("kwargs,fragment", [
    ({"lr_input": True}, "needs HR images"),
    ({"video": True}, "needs HR images"),
    ({"method": "ig"}, "method must be"),
])
def test_cem_config_errors(kwargs, fragment):
    with pytest.raises(LamfastError, match=fragment):
        RunConfig(**{"method": "cem", **kwargs})


def test_merge_export_and_report_with_cem_rows(images, tmp_path):
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    run([str(images)], ["bundled"], a, CEM, progress=False)
    run([str(images)], ["bundled"], b, CEM, progress=False)
    run([str(images)], ["bundled"], b, LAM, progress=False)
    s = merge(tmp_path / "all.sqlite", [a, b])
    assert (s.units_added, s.units_same) == (4, 2)  # b's CEM units agree with a's
    n = export(tmp_path / "all.sqlite", tmp_path / "rows.csv")
    with open(tmp_path / "rows.csv") as f:
        rows = list(csv.DictReader(f))
    assert n == len(rows) == 8 and sorted({r["method"] for r in rows}) == ["cem", "lam"]
    assert all(json.loads(r["cem"])["counts"] for r in rows if r["method"] == "cem")
    page = write_report(tmp_path / "all.sqlite", tmp_path / "report")
    text = page.read_text()
    assert "Causal effect maps, parameter set" in text and "4 CEM ROIs" in text and "blocks help" in text
    seen = browser.selftest(page)
    cem_tables = {t["table"] for t in seen if t["table"].startswith("cem-")}
    assert any(t.startswith("cem-models-") for t in cem_tables) and any(t.startswith("cem-rois-") for t in cem_tables)
    assert all(browser.is_sorted(t["values"], t["expected"] == "asc") for t in seen)


def test_cem_report_pairs_models_over_shared_rois(images, tmp_path):
    import torch

    torch.manual_seed(0)
    torch.save(lamfast.models.EDSR(n_resblocks=1, n_feats=8, scale=4, rgb_range=1.0).state_dict(), tmp_path / "e.pt")
    store = tmp_path / "s.sqlite"
    run([str(images)], ["bundled", f"edsr:{tmp_path / 'e.pt'}"], store, CEM, progress=False)
    from lamfast.dataset.cem_report import cem_sets

    with ResultStore(store) as db:
        (cset,) = cem_sets(list(db.rows(method="cem")))
    assert cset["shared"] == 4 and cset["left_out"] == 0 and [m["n"] for m in cset["models"]] == [4, 4]
    (pair,) = cset["pairs"]
    spans = {m["model"]: m["span"] for m in cset["models"]}
    assert pair["n"] == 4 and pair["mean_diff"] == pytest.approx(spans[pair["a"]] - spans[pair["b"]])


def test_run_method_cem_from_the_command_line(images, tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    assert main(["run", str(images), "--method", "cem", "--windows", "list:8,8:16", "--fine", "2", "--no-progress",
                 "-o", str(store)]) == 0
    assert "2 units done" in capsys.readouterr().out and len(_cem_rows(store)) == 2
    assert main(["run", str(images), "--method", "cem", "--fold", "10", "-o", str(store)]) != 0
    assert "--fold is a flag of --method lam" in capsys.readouterr().err
    assert main(["run", str(images), "--coarse", "5", "-o", str(store)]) != 0
    assert "--coarse is a flag of --method cem" in capsys.readouterr().err
