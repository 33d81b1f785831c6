"""P15, the windows of a DI benchmark: ``top:K`` keeps its windows apart (non-maximum suppression
with a minimum distance, under its own parameter hash), and a window that cannot run fails alone."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import torch

import lamfast
from lamfast.cli import main
from lamfast.dataset import RunConfig
from lamfast.errors import LamfastError
from lamfast.lam.objective import edge_strength
from lamfast.lam.windows import TopEdges, parse_windows
from lamfast.models import bundled_model, data_path
from lamfast.request import prepare_input

from conftest import assert_close, astronaut_images


def _sr(name="astronaut.png"):
    return prepare_input(None, data_path(name), scale=4).hr_tensor().float()


def _reference_nms(sr, size, k, stride, min_distance):
    """Every stride-grid window scored by a plain loop over its edge-strength sum, taken greedily."""
    e = edge_strength(sr).double()
    H, W = sr.shape[-2:]
    scored = []
    for h in range(0, H - size + 1, stride):
        for w in range(0, W - size + 1, stride):
            scored.append((-float(e[h:h + size, w:w + size].sum()), h, w))
    scored.sort(key=lambda t: t[0])  # stable: row-major among ties
    kept = []
    for _, h, w in scored:
        if len(kept) < k and all(max(abs(h - a), abs(w - b)) >= min_distance for a, b in kept):
            kept.append((h, w))
    return kept


@pytest.mark.parametrize("name", ["astronaut.png", "coffee.png", "shapes_sample.png"])
@pytest.mark.parametrize("size,k,stride,min_distance", [(16, 8, None, None), (16, 8, 4, 24), (32, 5, None, 0),
                                                        (8, 12, 2, 8)])
def test_top_windows_are_the_greedy_suppression_of_the_edge_scores(name, size, k, stride, min_distance):
    sr = _sr(name)
    got = TopEdges(k, size, stride, min_distance).resolve(sr)
    want = _reference_nms(sr, size, k, stride or size // 2, size if min_distance is None else min_distance)
    # sums of float64 edge strengths: near-equal scores may swap between the pooled and the looped sum
    assert [(h, w) for h, w, _ in got] == want
    assert all(s == size for *_, s in got)
    md = size if min_distance is None else min_distance
    assert all(max(abs(a[0] - b[0]), abs(a[1] - b[1])) >= md for i, a in enumerate(got) for b in got[:i])


def test_the_default_keeps_top_windows_from_overlapping_and_zero_keeps_the_k_best():
    sr = _sr()
    apart = TopEdges(8, 16).resolve(sr)
    best = TopEdges(8, 16, min_distance=0).resolve(sr)
    overlap = lambda a, b: abs(a[0] - b[0]) < 16 and abs(a[1] - b[1]) < 16  # noqa: E731
    assert not any(overlap(a, b) for i, a in enumerate(apart) for b in apart[:i])
    assert any(overlap(a, b) for i, a in enumerate(best) for b in best[:i])  # the near-duplicates
    assert apart[0] == best[0]
    with pytest.raises(LamfastError, match="min_distance must be an integer >= 0"):
        TopEdges(8, 16, min_distance=-1)


def test_min_distance_is_part_of_the_parameter_hash_only_for_top_windows():
    top = RunConfig(windows="top:8:16")
    assert top.params()["windows"] == "top:8:16:8:16"  # the canonical spec: every default filled in
    assert RunConfig(windows=parse_windows("top:8:16", min_distance=16)).params_hash() == top.params_hash()
    assert RunConfig(windows=parse_windows("top:8:16", min_distance=0)).params_hash() != top.params_hash()
    assert RunConfig(windows="grid:16").params()["windows"] == "grid:16:16"
    with pytest.raises(LamfastError, match="applies to top:K windows"):
        parse_windows("grid:16", min_distance=4)


def _rows(store):
    with sqlite3.connect(store) as db:
        return db.execute("SELECT h, w, size, status, error, di FROM results ORDER BY h, w").fetchall()


def test_a_small_image_gets_fewer_top_windows_with_a_note(tmp_path, capsys):
    folder = astronaut_images(tmp_path / "imgs", {"small.png": (0, 0, 32, 32)})
    store = tmp_path / "s.sqlite"
    assert main(["run", str(folder), "--windows", "top:8:16", "--fold", "2", "--no-progress",
                 "--store", str(store)]) == 0
    err = capsys.readouterr().err
    hr = prepare_input(None, folder / "small.png", scale=4).hr_tensor().float()
    want = _reference_nms(hr, 16, 8, 8, 16)  # greedy: the strongest first, so fewer than a tiling may fit
    assert 0 < len(want) < 8
    assert f"lamfast: note: small.png: {len(want)} of the 8 top windows fit 16 px apart on the 32x32 image" in err, err
    rows = _rows(store)
    assert sorted((h, w) for h, w, *_ in rows) == sorted(want)
    # 0 gives the 8 strongest, overlapping, under another parameter set in the same store
    assert main(["run", str(folder), "--windows", "top:8:16", "--min-distance", "0", "--fold", "2",
                 "--no-progress", "--store", str(store)]) == 0
    assert "note" not in capsys.readouterr().err
    assert len(_rows(store)) == len(want) + 8


@pytest.mark.parametrize("argv,match", [(["--min-distance", "-1"], "--min-distance: min_distance must be an integer"),
                                        (["--windows", "grid:16", "--min-distance", "4"],
                                         "--min-distance: min_distance applies to top:K windows")])
def test_bad_minimum_distances_fail_in_one_line(tmp_path, capsys, argv, match):
    assert main(["run", str(data_path("astronaut.png")), "--fold", "2", "--no-progress",
                 "--store", str(tmp_path / "s.sqlite"), *argv]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lamfast: error:") and match in err[0], err
    assert not (tmp_path / "s.sqlite").exists()


def test_a_window_that_does_not_fit_fails_alone(tmp_path, capsys):
    """A list window outside one image is a failed row of that window; the other windows are kept."""
    folder = astronaut_images(tmp_path / "imgs", {"a.png": (0, 0, 64, 64), "b.png": None})
    store = tmp_path / "s.sqlite"
    code = main(["run", str(folder), "--windows", "list:8,8;96,120:16", "--fold", "3", "--no-progress",
                 "--store", str(store)])
    assert code == 1  # one unit has a failed window
    err = capsys.readouterr().err
    assert "a.png × bundled: window (h=96, w=120, size=16) lies outside the 64x64 SR image" in err, err
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT image, h, w, status, error, di FROM results ORDER BY image, h").fetchall()
    assert [(Path(img).name, h, w, st) for img, h, w, st, *_ in rows] == [("a.png", 8, 8, "ok"), ("a.png", 96, 120, "failed"),
                                                               ("b.png", 8, 8, "ok"), ("b.png", 96, 120, "ok")]
    model = bundled_model().model
    x = prepare_input(model, folder / "a.png").tensor()
    assert_close(rows[0][5], lamfast.lam(model, x, 8, 8, 16, fold=3).di, "same_lam", dtype=torch.float32)
    # the report and the export take the kept window
    assert main(["export", str(store), "-o", str(tmp_path / "r.csv")]) == 0
    assert main(["report", str(store), "-o", str(tmp_path / "rep")]) == 0
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "lies outside the 64x64 SR image" in page


# --- named models ---------------------------------------------------------------------------------

def test_name_equals_spec_names_a_model_and_paths_are_never_read_as_names(tmp_path):
    from lamfast.request import ModelSpec, model_labels

    s = ModelSpec.parse("EDSR=edsr:weights/x4.pt")
    assert (s.label, s.arch, s.path, s.name) == ("EDSR", "edsr", "weights/x4.pt", "EDSR")
    assert ModelSpec.parse("base=bundled").bundled and ModelSpec.parse("base=bundled").label == "base"
    assert ModelSpec.parse("runs/lr=1e-4/x4.pt").label is None  # a '/' before '=': a path
    odd = tmp_path / "a=b.pt"
    odd.write_bytes(b"")
    assert ModelSpec.parse(str(odd)).label is None and ModelSpec.parse("a=b.pt").label == "a"
    assert ModelSpec.parse("EDSR=x.pt").resolved().label == "EDSR"
    with pytest.raises(LamfastError, match="has no spec after '='"):
        ModelSpec.parse("EDSR=")
    specs = [ModelSpec.parse(t) for t in ["a/edsr.pt", "b/edsr.pt", "bundled", "edsr=c/other.pt", "x/edsr-2.pt"]]
    assert model_labels(specs) == ["edsr-2", "edsr-3", "bundled", "edsr", "edsr-2-2"]
    with pytest.raises(LamfastError, match="two models are both named 'm'"):
        model_labels([ModelSpec.parse("m=a.pt"), ModelSpec.parse("m=b.pt")])


def test_a_named_model_is_named_in_the_store_report_and_export_and_its_notes_are_said_once(tmp_path, capsys):
    import csv

    folder = astronaut_images(tmp_path / "imgs", {"a.png": (0, 0, 32, 32), "b.png": (32, 32, 64, 64)})
    torch.manual_seed(0)
    ckpt = tmp_path / "deep" / "folder" / "edsr_baseline_x4-6b446fab.pt"
    ckpt.parent.mkdir(parents=True)
    torch.save(lamfast.models.EDSR(n_resblocks=1, n_feats=8, rgb_range=1.0).state_dict(), ckpt)
    store = tmp_path / "s.sqlite"
    argv = ["run", str(folder), "--windows", "list:0,0:16", "--fold", "2", "--no-progress", "--store", str(store)]
    assert main([*argv, "--model", f"EDSR={ckpt}", "--model", "bundled"]) == 0
    err = capsys.readouterr().err.splitlines()
    edsr_notes = [line for line in err if line.startswith("lamfast: note: EDSR: ")]
    assert edsr_notes and len(edsr_notes) == len(set(edsr_notes))  # two images, each note once
    with sqlite3.connect(store) as db:
        assert sorted(db.execute("SELECT DISTINCT label FROM results")) == [("EDSR",), ("bundled",)]
        notes = dict(db.execute("SELECT label, model_notes FROM units"))
    assert [f"lamfast: note: EDSR: {n}" for n in __import__("json").loads(notes["EDSR"])] == edsr_notes
    assert main(["export", str(store), "-o", str(tmp_path / "r.csv")]) == 0
    with open(tmp_path / "r.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["model"] for r in rows} == {"EDSR", "bundled"} and "label" not in rows[0]
    assert {r["model_spec"] for r in rows if r["model"] == "EDSR"} == {str(ckpt.resolve())}
    assert main(["report", str(store), "-o", str(tmp_path / "rep")]) == 0
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "<td class='name'>EDSR</td>" in page and page.count(str(ckpt.parent)) == 1  # the models table's title
    # renaming keeps the results: nothing recomputed, the new name everywhere
    capsys.readouterr()
    assert main([*argv, "--model", f"Baseline={ckpt}", "--model", "bundled"]) == 0
    assert "0 units done, 4 skipped" in capsys.readouterr().out
    with sqlite3.connect(store) as db:
        assert sorted(db.execute("SELECT DISTINCT label FROM results")) == [("Baseline",), ("bundled",)]
    # a default name is the file stem
    assert main([*argv, "--model", str(ckpt), "--store", str(tmp_path / "t.sqlite")]) == 0
    with sqlite3.connect(tmp_path / "t.sqlite") as db:
        assert list(db.execute("SELECT DISTINCT label FROM results")) == [("edsr_baseline_x4-6b446fab",)]
