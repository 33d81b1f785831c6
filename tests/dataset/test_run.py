"""Dataset runner: store, resume, shards, failures, export, report (in headless Chromium)."""
from __future__ import annotations

import csv
import html
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lamfast
from lamfast.cli import main
from lamfast.dataset import ResultStore, RunConfig, decode_map, discover_images, export, run, write_report
from lamfast.lam import LAMParams
from lamfast.imageio import prepare_images, read_rgb, to_tensor
from lamfast.models import bundled_model

from conftest import assert_close, astronaut_crops

import browser

CONFIG = RunConfig(windows="grid:32", lam=LAMParams(fold=4))  # 2x2 windows of a 64² SR image


@pytest.fixture()
def images(tmp_path) -> Path:
    folder = tmp_path / "imgs"
    astronaut_crops(folder, 4, 64, (37, 23))
    return folder


def _rows(store):
    with ResultStore(store) as db:
        return {r["key"]: r for r in db.rows(with_maps=True)}


def _by_place(store):
    """Rows by (image path, model, window): what a key stood for before keys held content hashes."""
    return {(r["image"], r["model"], r["h"], r["w"], r["size"]): r for r in _rows(store).values()}


def test_run_stores_one_row_per_window_equal_to_lam(images, tmp_path):
    store = tmp_path / "s.sqlite"
    summary = run([str(images)], ["bundled"], store, CONFIG, progress=False)
    assert (summary.units_done, summary.units_failed, summary.windows_done) == (4, 0, 16)
    rows = _rows(store)
    assert len(rows) == 16 and all(r["status"] == "ok" for r in rows.values())
    r = next(r for r in rows.values() if r["key"].endswith("|32,32,32") and r["image"].endswith("img02.png"))
    _, lr = prepare_images(read_rgb(images / "img02.png")[0], 4)
    ref = lamfast.lam(bundled_model().model, to_tensor(lr), 32, 32, 32, fold=4)
    assert_close(r["attribution"], ref.attribution, "same_lam")  # stored losslessly
    assert_close(r["di"], ref.di, "same_lam", dtype=torch.float32)


def test_rerun_skips_finished_units(images, tmp_path):
    store = tmp_path / "s.sqlite"
    run([str(images)], ["bundled"], store, CONFIG, progress=False)
    before = _rows(store)
    again = run([str(images)], ["bundled"], store, CONFIG, progress=False)
    assert (again.units_skipped, again.units_done) == (4, 0)
    assert _rows(store).keys() == before.keys()
    other = run([str(images)], ["bundled"], store, RunConfig(windows="grid:32", lam=LAMParams(fold=5)), progress=False)
    assert other.units_done == 4  # other parameters: other keys
    assert len(_rows(store)) == 32


def test_shards_partition_the_work(images, tmp_path):
    whole = tmp_path / "whole.sqlite"
    run([str(images)], ["bundled"], whole, CONFIG, progress=False)
    keys = set()
    for k in range(3):
        part = tmp_path / f"part{k}.sqlite"
        run([str(images)], ["bundled"], part, CONFIG, shard=(k, 3), progress=False)
        shard_keys = set(_rows(part))
        assert not keys & shard_keys
        keys |= shard_keys
    assert keys == set(_rows(whole))


def test_failures_become_rows_and_the_run_continues(images, tmp_path, capsys):
    """An image that cannot be read is a failure row and the run goes on; a model that cannot load is no
    row at all but one line before the store is made (tests/cli/test_errors_before_work.py)."""
    (images / "broken.png").write_bytes(b"not a png")
    bad_ckpt = tmp_path / "bad.pth"
    torch.save({"nope": torch.zeros(1)}, bad_ckpt)
    store = tmp_path / "s.sqlite"
    assert main(["run", str(images), "--model", "bundled", "--model", str(bad_ckpt), "--store", str(store),
                 "--windows", "grid:32", "--fold", "4", "--no-progress"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("lamfast: note:")]
    assert not store.exists() and len(errors) == 1 and "bad.pth" in errors[0]
    code = main(["run", str(images), "--model", "bundled", "--store", str(store), "--windows", "grid:32", "--fold", "4",
                 "--no-progress"])
    assert code == 1  # one failed unit: the broken image
    rows = _rows(store)
    failed = [r for r in rows.values() if r["status"] == "failed"]
    assert len(failed) == 1 and "image:" in failed[0]["error"]
    assert sum(r["status"] == "ok" for r in rows.values()) == 16
    err = capsys.readouterr().err
    assert "failed" in err and "Traceback" not in err


def test_discover_images_folder_glob_manifest(images, tmp_path):
    manifest = tmp_path / "list.txt"
    manifest.write_text("# two images\nimgs/img01.png\nimgs/img03.png\n")
    assert [Path(p).name for p in discover_images([str(manifest)])] == ["img01.png", "img03.png"]
    assert len(discover_images([str(images / "img*.png")])) == 4
    assert len(discover_images([str(images)])) == 4
    with pytest.raises(ValueError, match="not a folder"):
        discover_images([str(tmp_path / "nothing*.png")])


def test_export_csv_and_parquet(images, tmp_path):
    store = tmp_path / "s.sqlite"
    run([str(images)], ["bundled"], store, CONFIG, progress=False)
    assert export(store, tmp_path / "r.csv") == 16
    with open(tmp_path / "r.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16 and {"key", "di", "gini", "status"} <= set(rows[0])
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow (test extra) writes Parquet")
    assert export(store, tmp_path / "r.parquet") == 16
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.num_rows == 16 and "di" in table.column_names
    with pytest.raises(ValueError, match=".csv or .parquet"):
        export(store, tmp_path / "r.xlsx")


def test_store_is_wal_and_maps_roundtrip(tmp_path):
    a = np.random.default_rng(0).normal(size=(3, 5, 7)).astype(np.float32)
    from lamfast.dataset.store import encode_map

    blob, shape = encode_map(a)
    assert np.array_equal(decode_map(blob, shape), a)
    with ResultStore(tmp_path / "s.sqlite") as db:
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_html_report_compares_models_in_headless_chromium(images, tmp_path):
    from lamfast.models import EDSR

    weird = images / "<b>evil & name<i>.png"
    shutil.copy(images / "img00.png", weird)
    (images / "broken.png").write_bytes(b"nope")
    torch.manual_seed(0)
    edsr = tmp_path / "edsr.pt"
    torch.save(EDSR(n_resblocks=1, n_feats=8, scale=4, rgb_range=1.0).state_dict(), edsr)
    store = tmp_path / "s.sqlite"
    config = RunConfig(windows="top:3:16", lam=lamfast.LAMParams(fold=3))
    run([str(images)], ["bundled", str(edsr)], store, config, progress=False)
    run([str(images)], ["bundled"], store, RunConfig(windows="top:3:16", lam=lamfast.LAMParams(fold=4)),
        progress=False)
    index = write_report(store, tmp_path / "report")
    text = index.read_text()
    assert "<b>evil" not in text and "&lt;b&gt;evil &amp; name&lt;i&gt;" in text
    assert text.count("<h2 id='set-") == 2  # two parameter sets, never pooled
    assert "id='pairs-" in text and "95% CI" in text and "LAM figure" in text
    results = browser.selftest(index)
    tables = {r["table"] for r in results}
    assert {"windows", "failures"} <= tables and sum(t.startswith("models-") for t in tables) == 2
    assert sum(t.startswith("pairs-") for t in tables) == 1
    assert sum(t.startswith("sizes-") for t in tables) == 2  # DI per LR size, in each parameter set
    for r in results:
        assert r["order"] == r["expected"], r
        assert len(r["values"]) >= 1 and browser.is_sorted(r["values"], r["order"] == "asc"), r
    di = [r for r in results if r["table"].startswith("models-") and r["col"] == 2]  # mean DI
    assert all(len(set(r["values"])) > 1 for r in di if len(r["values"]) > 1)  # a real order was checked
    shot = browser.screenshot(index.as_uri(), tmp_path / "shot.png", size="1200,1600")
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.std() > 10  # text, tables and images, not a blank page
    assert (pixels < 128).mean() > 0.01


def test_report_pages_and_sorts_thousands_of_windows(tmp_path):
    """2,100 windows: the windows table shows pages of 100, and a sort orders all rows, not one page."""
    from lamfast.dataset.report import PAGE_ROWS
    from lamfast.dataset.store import ResultRow, UnitRecord

    rng = np.random.default_rng(0)
    store = tmp_path / "s.sqlite"
    attribution = rng.random((3, 8, 8)).astype(np.float32)
    params = json.dumps({"fold": 50})
    with ResultStore(store) as db:
        for u in range(70):
            key = f"img{u}.png|m{u % 2}|p"
            rows = [ResultRow(key=f"{key}|{i}", unit_key=key, image=f"img{u}.png", model=f"m{u % 2}", label=None,
                              h=i, w=i, size=16, params_hash="p", params=params, status="ok",
                              di=float(rng.random() * 10), gini=0.5, nan_steps=0, scale=4, attribution=attribution,
                              seconds=0.1, timings={}) for i in range(30)]
            db.write_unit(UnitRecord(key, f"img{u}.png", f"m{u % 2}", "p", "ok", rows=rows))
    with ResultStore(store) as db:
        dis = [r["di"] for r in db.rows()]
    index = write_report(store, tmp_path / "report")
    results = [r for r in browser.selftest(index) if r["table"] == "windows"]
    assert results and all(len(r["values"]) == PAGE_ROWS for r in results)
    di_col = [r for r in results if r["col"] == 6]
    assert float(di_col[0]["values"][0]) == pytest.approx(min(dis), abs=1e-4)  # the sort spans every page
    assert float(di_col[1]["values"][0]) == pytest.approx(max(dis), abs=1e-4)
    image_col = [r for r in results if r["col"] == 0]
    assert image_col[0]["values"][0] == "img0.png" and image_col[1]["values"][0] == "img9.png"
    assert len(dis) == 2100


def test_run_cli_rejects_a_bad_shard(images, tmp_path, capsys):
    assert main(["run", str(images), "--store", str(tmp_path / "s.sqlite"), "--shard", "3/2"]) == 2  # argparse's
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--shard: --shard k/n needs 0 <= k < n" in err[0]


def test_run_cli_rejects_a_bad_window_spec(images, tmp_path, capsys):
    code = main(["run", str(images), "--store", str(tmp_path / "s.sqlite"), "--no-progress", "--windows", "grid"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "bad window spec" in err[0]


def test_store_file_that_is_not_sqlite(tmp_path, images, capsys):
    bad = tmp_path / "not.sqlite"
    bad.write_text("hello, not a database " * 100)
    code = main(["run", str(images), "--store", str(bad), "--no-progress", "--fold", "3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "not a lamfast results store" in err[0]


def test_a_rerun_keeps_earlier_failures_visible(images, tmp_path, capsys):
    (images / "broken.png").write_bytes(b"not a png")
    store = tmp_path / "s.sqlite"
    args = ["run", str(images), "--store", str(store), "--windows", "grid:32", "--fold", "3", "--no-progress"]
    assert main(args) == 1
    capsys.readouterr()
    assert main(args) == 1  # nothing recomputed, and the failure still counts
    captured = capsys.readouterr()
    assert "0 units done, 4 skipped" in captured.out
    assert "1 failed (1 from earlier runs; --retry-failed redoes them)" in captured.out
    assert "broken.png" in captured.err and "(earlier run)" in captured.err


def test_the_failure_list_is_complete_or_says_how_many_more(tmp_path, capsys):
    from lamfast.cli.dataset import FAILURES_SHOWN

    folder = tmp_path / "bad"
    folder.mkdir()
    for i in range(FAILURES_SHOWN + 5):
        (folder / f"b{i:02d}.png").write_bytes(b"nope")
    code = main(["run", str(folder), "--store", str(tmp_path / "s.sqlite"), "--fold", "2", "--no-progress"])
    assert code == FAILURES_SHOWN + 5
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("lamfast: failed:")]
    assert len(lines) == FAILURES_SHOWN and lines[-1] == "lamfast: failed: ... and 6 more (lamfast export lists every row)"


def test_load_model_accepts_bundled():
    from lamfast.models import load_model

    loaded = load_model("bundled")
    assert loaded.arch == "tinysr" and loaded.source.startswith("bundled")


def test_export_types_hold_for_an_all_failed_store_and_maps_go_along(images, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow (test extra) writes Parquet")
    import pyarrow as pa

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"nope")
    failed = tmp_path / "f.sqlite"
    run([str(bad)], ["bundled"], failed, CONFIG, progress=False)
    export(failed, tmp_path / "f.parquet")
    schema = pq.read_table(tmp_path / "f.parquet").schema
    assert schema.field("di").type == pa.float64() and schema.field("h").type == pa.int64()
    assert schema.field("error").type == pa.string()

    store = tmp_path / "s.sqlite"
    run([str(images)], ["bundled"], store, CONFIG, progress=False)
    with ResultStore(store) as db:
        want = {r["key"]: r["attribution"] for r in db.rows(with_maps=True)}
    export(store, tmp_path / "m.parquet", maps=True)
    table = pq.read_table(tmp_path / "m.parquet").to_pylist()
    for row in table:
        got = np.asarray(row["attribution"], dtype=np.float32).reshape(row["attribution_shape"])
        assert np.array_equal(got, want[row["key"]])
    assert main(["export", str(store), "-o", str(tmp_path / "m.csv"), "--maps"]) == 0
    with np.load(tmp_path / "m.maps.npz") as z:
        keys = list(z["keys"])
        assert len(keys) == 16 and all(np.array_equal(z[f"m{i}"], want[k]) for i, k in enumerate(keys))


def test_units_are_keyed_by_content(images, tmp_path, capsys):
    from lamfast.models import bundled_model

    ckpt = tmp_path / "tiny.pt"
    torch.save(bundled_model().model.state_dict(), ckpt)
    store = tmp_path / "s.sqlite"
    args = ["run", str(images), "--model", f"tinysr:{ckpt}", "--store", str(store), "--windows", "grid:32",
            "--fold", "3", "--no-progress"]
    assert main(args) == 0
    before = _rows(store)
    capsys.readouterr()

    target = sorted(images.iterdir())[0]
    target.write_bytes(target.read_bytes())  # rewritten, same bytes: nothing to do
    assert main(args) == 0
    assert "0 units done, 4 skipped" in capsys.readouterr().out

    from PIL import Image
    Image.open(sorted(images.iterdir())[1]).save(target)  # another picture at the same path
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 units done, 3 skipped" in out and "1 recomputed because their image or checkpoint changed" in out
    after = _by_place(store)
    before = {(r["image"], r["model"], r["h"], r["w"], r["size"]): r for r in before.values()}
    assert set(after) == set(before)  # replaced in place, no stale rows left beside the new ones
    changed = [k for k in after if after[k]["di"] != before[k]["di"]]
    assert changed and all(k[0] == str(target) for k in changed)

    sd = torch.load(ckpt, weights_only=True)
    sd["tail.bias"] = sd["tail.bias"] + 0.01
    torch.save(sd, ckpt)  # new weights under the same file name: every unit of the model again
    assert main(args) == 0
    assert "4 units done, 0 skipped" in capsys.readouterr().out
    assert len(_rows(store)) == 16  # the old weights' rows are gone, not kept beside the new ones


def test_a_moved_store_and_dataset_resume_and_count_once(images, tmp_path, capsys):
    """Keys hold relative names and content hashes: the store copied to another machine, with the data
    mounted at another path, resumes; nothing is recomputed and no window is stored twice."""
    import shutil

    store = tmp_path / "s.sqlite"
    run([str(images)], ["bundled"], store, CONFIG, progress=False)
    before = _rows(store)
    elsewhere = tmp_path / "mnt" / "data"
    shutil.copytree(images, elsewhere)
    moved = tmp_path / "other_machine" / "s.sqlite"
    moved.parent.mkdir()
    shutil.copy(store, moved)
    summary = run([str(elsewhere)], ["bundled"], moved, CONFIG, progress=False)
    assert (summary.units_done, summary.units_skipped) == (0, 4)
    after = _rows(moved)
    assert set(after) == set(before)
    assert all(r["image"].startswith(str(elsewhere)) for r in after.values())  # the paths it has now
    # so every worker, wherever it mounts the data, puts a unit in the same shard
    from lamfast.dataset.runner import discover_inputs, plan

    keys = [[u.key for u in plan(discover_inputs([str(d)]), ["bundled"], CONFIG, (1, 3))] for d in (images, elsewhere)]
    assert keys[0] == keys[1] and keys[0]


def test_a_version_3_store_is_upgraded_in_place_and_keeps_its_rows(images, tmp_path):
    """Version 3 lacks only the convergence columns: they are added, its rows read with None there."""
    import sqlite3

    from lamfast.dataset.store import SCHEMA_VERSION

    store = tmp_path / "s.sqlite"
    run([str(images)], ["bundled"], store, CONFIG, progress=False)
    with ResultStore(store) as db:
        before = list(db.rows())
    with sqlite3.connect(store) as db:  # make it the version 3 layout
        for column in ("di_fold_half", "completeness", "method", "cem"):
            db.execute(f"ALTER TABLE results DROP COLUMN {column}")
        db.execute("PRAGMA user_version = 3")
    with ResultStore(store) as db:
        after = list(db.rows())
        assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert before and all(r["di_fold_half"] is not None for r in before if r["status"] == "ok")
    assert [r["di_fold_half"] for r in after] == [None] * len(after)
    strip = lambda r: {k: v for k, v in r.items() if k not in ("di_fold_half", "completeness")}  # noqa: E731
    assert [strip(r) for r in after] == [strip(r) for r in before]


def test_a_version_4_store_is_upgraded_in_place_and_its_rows_are_lam_rows(images, tmp_path):
    """Version 4 lacks only the method and CEM columns: its rows read as LAM rows, as they are."""
    import sqlite3

    from lamfast.dataset.store import SCHEMA_VERSION

    store = tmp_path / "s.sqlite"
    run([str(images)], ["bundled"], store, CONFIG, progress=False)
    with ResultStore(store) as db:
        before = list(db.rows())
    with sqlite3.connect(store) as db:
        for column in ("method", "cem"):
            db.execute(f"ALTER TABLE results DROP COLUMN {column}")
        db.execute("PRAGMA user_version = 4")
    with ResultStore(store) as db:
        after = list(db.rows())
        assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert list(db.rows(method="cem")) == []
    assert before and after == before and {r["method"] for r in after} == {"lam"}


def test_a_store_of_another_layout_is_refused_in_one_line(images, tmp_path, capsys):
    """The store has a layout version; a store of another (an older lamfast's) is refused, nothing written."""
    import sqlite3

    from lamfast.dataset.store import SCHEMA_VERSION

    store = tmp_path / "s.sqlite"
    run([str(images)], ["bundled"], store, CONFIG, progress=False)
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        db.execute("PRAGMA user_version = 2")  # an older layout, which nothing upgrades
        before = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert main(["run", str(images), "--store", str(store), "--windows", "grid:32", "--fold", "4",
                 "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "layout version 2" in err[0] and "--store" in err[0]
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == before
    for command in (["report", str(store), "-o", str(tmp_path / "r")], ["export", str(store), "-o", str(tmp_path / "e.csv")],
                    ["merge", str(store), "-o", str(tmp_path / "m.sqlite")]):
        assert main(command) == 1, command
        assert "layout version" in capsys.readouterr().err


def test_top_windows_are_paired_across_models(images, tmp_path):
    from lamfast.imageio import prepare_images, read_rgb, to_tensor
    from lamfast.lam.windows import TopEdges
    from lamfast.models import EDSR, bundled_model

    torch.manual_seed(0)
    edsr = tmp_path / "edsr.pt"
    torch.save(EDSR(n_resblocks=1, n_feats=8, scale=4, rgb_range=1.0).state_dict(), edsr)
    config = RunConfig(windows="top:4:16", lam=lamfast.LAMParams(fold=2))
    store = tmp_path / "s.sqlite"
    run([str(images)], ["bundled", str(edsr)], store, config, progress=False)
    by_model: dict = {}
    for r in _rows(store).values():
        by_model.setdefault(r["model"], {}).setdefault(r["image"], set()).add((r["h"], r["w"], r["size"]))
    a, b = by_model.values()
    assert a == b and all(len(v) == 4 for v in a.values())
    img = sorted(a)[0]
    hr, _ = prepare_images(read_rgb(img)[0], 4)
    assert a[img] == set(TopEdges(4, 16).resolve(to_tensor(hr)))  # from the HR image, not a model's output

    ref = RunConfig(windows="top:4:16", lam=lamfast.LAMParams(fold=2), windows_from="bundled")
    assert ref.params_hash() != config.params_hash()
    store2 = tmp_path / "r.sqlite"
    run([str(images)], ["bundled", str(edsr)], store2, ref, progress=False)
    by_model2: dict = {}
    for r in _rows(store2).values():
        by_model2.setdefault(r["model"], {}).setdefault(r["image"], set()).add((r["h"], r["w"], r["size"]))
    a2, b2 = by_model2.values()
    assert a2 == b2
    _, lr = prepare_images(read_rgb(img)[0], 4)
    with torch.no_grad():
        sr = bundled_model().model(to_tensor(lr)[None])[0]
    assert a2[img] == set(TopEdges(4, 16).resolve(sr))


def test_the_progress_bar_counts_windows_when_the_spec_fixes_them():
    counts = {spec: RunConfig(windows=spec).windows.count for spec in ("top:8:16", "random:5:16:3", "list:0,0;16,16:8",
                                                                       "grid:16")}
    assert counts == {"top:8:16": 8, "random:5:16:3": 5, "list:0,0;16,16:8": 2, "grid:16": None}


def test_bundled_names_the_bundled_photo_and_clip_as_inputs():
    from lamfast.bundled import bundled_file
    from lamfast.dataset.runner import discover_clips, discover_inputs

    assert discover_inputs(["bundled"]) == [(str(bundled_file("image").resolve()), "astronaut.png")]
    assert discover_clips(["bundled"]) == [(str(bundled_file("clip").resolve()), "clip_coffee")]
