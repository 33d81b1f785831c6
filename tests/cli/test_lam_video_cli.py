"""Video LAM on the command line and in dataset runs (P13, part 4), and the bundled TinyVSR and clip.

``lamfast lam --video`` against :func:`lamfast.lam_video` on the same clip; ``lamfast run --video``
rows against it too, resumed from the store, and reported with the frame shares; bad input in one
line; the bundled model beats bicubic on the bundled clip and its frame share falls off away from
the centre frame it restores.
"""
from __future__ import annotations

import json
import math
import shutil
import sqlite3

import numpy as np
import pytest
import torch
from PIL import Image

import lamfast
from lamfast.cli import main
from lamfast.dataset.store import ResultStore
from lamfast.models import bundled_video_model, data_path
from lamfast.request import frame_files, prepare_clip

from conftest import assert_close

BUNDLED_WINDOW = (56, 72, 16)


@pytest.fixture(scope="module")
def bundled():
    return bundled_video_model().model


@pytest.fixture()
def clips(tmp_path):
    """Two clips of 5 frames: the bundled one and its mirror image."""
    root = tmp_path / "clips"
    for name, flip in (("coffee", False), ("mirrored", True)):
        (root / name).mkdir(parents=True)
        for f in frame_files("bundled"):
            img = Image.open(f)
            (img.transpose(Image.FLIP_LEFT_RIGHT) if flip else img).save(root / name / f.name)
    return root


def test_the_bundled_model_beats_bicubic_and_uses_the_neighbouring_frames(bundled):
    clip = prepare_clip(bundled, "bundled")
    assert (clip.scale, len(clip.files)) == (2, 5)
    hr = torch.from_numpy(np.asarray(clip.hr[2], dtype=np.float32) / 255).permute(2, 0, 1)
    bicubic = torch.from_numpy(np.asarray(clip.lr[2].resize(clip.hr[2].size, Image.BICUBIC), dtype=np.float32) / 255)

    def psnr(x):
        x = x.clamp(0, 1)[..., 2:-2, 2:-2]
        return float(10 * torch.log10(1 / (x - hr[..., 2:-2, 2:-2]).pow(2).mean()))

    with torch.no_grad():
        sr = bundled(clip.tensor()[None])[0]
    assert psnr(sr) - psnr(bicubic.permute(2, 0, 1)) >= 0.5
    result = lamfast.lam(bundled, clip.tensor(), *BUNDLED_WINDOW)
    share = [float(v) for v in result.frame_share]
    assert share[2] > share[1] > share[0] and share[2] > share[3] > share[4], share
    assert min(share) > 0 and result.frame is None and result.crop.box is not None


def test_lam_video_cli_writes_every_frame_row_and_the_result(bundled, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["lam", "--video", "--fold", "10", "--no-progress", "--output-dir", str(out)]) == 0
    summary = json.loads((out / "result.json").read_text())
    files = set(summary["files"])
    assert {f"frame_{t}.png" for t in range(5)} | {"frame_share.png", "grid.png", "attribution.npy", "saliency.npy",
                                                   "result.json"} == files
    assert np.load(out / "attribution.npy").shape == (5, 3, 64, 64) and np.load(out / "saliency.npy").shape == (5, 64, 64)
    want = lamfast.lam(bundled, prepare_clip(bundled, "bundled").tensor(), *BUNDLED_WINDOW, fold=10)
    assert_close(summary["di"], want.di, "lam_di", dtype=torch.float32)
    assert_close(np.array(summary["frame_share"]), want.frame_share.numpy(), "same_lam", dtype=torch.float32)
    assert summary["frames"] == 5 and summary["frame"] is None and len(summary["video"]) == 5
    rows = [Image.open(out / f"frame_{t}.png") for t in range(5)]
    assert {r.size for r in rows} == {(4 * 128, 128)}  # window, abs map, blend, KDE; x2 of 64 px
    # grid.png: the five rows, pixel for pixel, one under the other, after a label column (t=..., share)
    # and under a header (caption, titles); the frame-share chart below
    grid = np.asarray(Image.open(out / "grid.png").convert("RGB"))
    first = np.asarray(rows[0].convert("RGB"))
    x0, y0 = next((x, y) for y in range(0, 200) for x in range(0, 200)
                  if np.array_equal(grid[y, x:x + 512], first[0]) and np.array_equal(grid[y:y + 128, x:x + 512], first))
    assert x0 > 40 and y0 > 30  # room for the frame labels and the header
    for t in range(5):
        assert np.array_equal(grid[y0 + 128 * t:y0 + 128 * (t + 1), x0:x0 + 512], np.asarray(rows[t].convert("RGB")))
        labels = grid[y0 + 128 * t:y0 + 128 * (t + 1), :x0]
        assert (labels.max(axis=2) < 80).sum() > 20  # "t=..." written beside each row
    assert grid.shape[0] - (y0 + 5 * 128) >= 150  # the chart, with its axis labels
    chart = np.asarray(Image.open(out / "frame_share.png").convert("RGB"))
    assert (chart[:, :20].max(axis=2) < 80).sum() > 30  # the rotated y-axis label
    # the centre frame's abs map is the one with colour, on the clip's joint scale
    def coloured(row):  # pixels of the abs map away from the colour of zero attribution
        panel = np.asarray(row.crop((128, 0, 256, 128)), dtype=np.int64)
        zero = np.array(lamfast.viz.seismic(torch.full((1, 1), 0.5))[0, 0], dtype=np.int64)
        return int((np.abs(panel - zero).sum(axis=2) > 30).sum())

    assert coloured(rows[2]) > 5 * max(1, coloured(rows[0]))
    assert "frame share" in capsys.readouterr().out


def test_lam_video_cli_on_a_glob_with_an_all_frame_model(tmp_path, capsys):
    from toy_models import SlidingVSR

    model = SlidingVSR()
    ckpt = tmp_path / "sliding.pt"
    torch.save(model.state_dict(), ckpt)
    arch = tmp_path / "sliding.py"
    arch.write_text("from toy_models import SlidingVSR\n")
    frames = tmp_path / "frames"
    frames.mkdir()
    for t, f in enumerate(frame_files("bundled")):
        Image.open(f).crop((0, 0, 48, 48)).save(frames / f"f{t + 1}.png")  # f1..f5: numbers sort as numbers
    out = tmp_path / "out"
    assert main(["lam", "--video", str(frames / "f*.png"), "--modelpath", str(ckpt), "--arch", f"{arch}:SlidingVSR",
                 "--frame", "4", "--h", "8", "--w", "8", "--fold", "6", "--no-progress", "--output-dir", str(out)]) == 0
    summary = json.loads((out / "result.json").read_text())
    assert summary["frame"] == 4 and [p.split("/")[-1] for p in summary["video"]] == [f"f{t}.png" for t in range(1, 6)]
    clip = prepare_clip(model, str(frames / "f*.png"))
    want = lamfast.lam(model.eval(), clip.tensor(), 8, 8, 16, frame=4, fold=6)
    assert_close(np.array(summary["frame_share"]), want.frame_share.numpy(), "same_lam", dtype=torch.float32)


@pytest.mark.parametrize("argv,match", [
    (["--video", "/nonexistent/frames"], "--video: /nonexistent/frames: not a folder of frames"),
    (["--frame", "2"], "unrecognized arguments: --frame 2"),  # lam (an image) has no --frame
    (["--video", "--frame", "1"], "--frame: frame=1 was given, but the model returns one output frame"),
    (["--video", "--h", "120"], "window (h=120, w=72, size=16) lies outside the 128x128 SR image"),
    (["--video", "--imgpath", "x.png"], "unrecognized arguments: --imgpath x.png"),  # lam-video has none
])
def test_bad_video_input_is_one_line(argv, match, tmp_path, capsys):
    assert main(["lam", *argv, "--fold", "2", "--no-progress", "--output-dir", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert match in err[-1] and err[-1].startswith("lamfast: error:"), err
    assert not (tmp_path / "o" / "result.json").exists()


def test_frames_of_different_sizes_and_clips_the_model_refuses(tmp_path, capsys):
    frames = tmp_path / "odd"
    frames.mkdir()
    for t, f in enumerate(frame_files("bundled")):
        Image.open(f).crop((0, 0, 64, 64 if t else 60)).save(frames / f"{t}.png")
    assert main(["lam", "--video", str(frames), "--no-progress", "--output-dir", str(tmp_path / "o")]) != 0
    assert "the frames differ in size" in capsys.readouterr().err
    three = tmp_path / "three"
    three.mkdir()
    for f in frame_files("bundled")[:3]:
        shutil.copy(f, three / f.name)
    assert main(["lam", "--video", str(three), "--no-progress", "--output-dir", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert "TinyVSR takes clips of 5 frames of 3 channels, got 3 frames of 3" in err[-1], err


def test_run_video_stores_each_window_as_lam_video_and_resumes(bundled, clips, tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    argv = ["run", str(clips), "--video", "--windows", "top:3:16", "--fold", "8", "--store", str(store),
            "--no-progress"]
    assert main(argv) == 0
    assert "2 units done" in capsys.readouterr().out
    with ResultStore(store) as db:
        rows = [r for r in db.rows(with_maps=True)]
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)
    row = next(r for r in rows if r["image"].endswith("mirrored"))
    clip = prepare_clip(bundled, clips / "mirrored")
    want = lamfast.lam(bundled, clip.tensor(), row["h"], row["w"], row["size"], fold=8)
    video = json.loads(row["video"])
    assert_close(row["di"], want.di, "lam_di", dtype=torch.float32)
    assert_close(np.array(video["frame_share"]), want.frame_share.numpy(), "same_lam", dtype=torch.float32)
    assert row["attribution"].shape == (5, 3, 64, 64) and math.isclose(row["gini"], 1 - row["di"] / 100)
    assert main(argv) == 0
    assert "0 units done, 2 skipped" in capsys.readouterr().out
    report = tmp_path / "report"
    assert main(["report", str(store), "-o", str(report)]) == 0
    page = (report / "index.html").read_text()
    assert "Frame share per model (clips)" in page and "share t=4" in page
    assert page.count("<img src='img/") >= 6  # the figures draw the clips' frames
    import browser

    results = [r for r in browser.selftest(report / "index.html") if r["table"].startswith("frames-")]
    assert results, "the frame-share table is sortable in the page"
    for r in results:
        assert r["order"] == r["expected"] and len(r["values"]) == 1 and browser.is_sorted(r["values"], r["order"] == "asc")


def test_video_runs_and_image_runs_have_their_own_keys():
    from lamfast.dataset import RunConfig

    assert RunConfig().params_hash() == RunConfig(video=False).params_hash()
    assert RunConfig(video=True).params_hash() != RunConfig().params_hash()
    assert RunConfig(video=True, frame=1).params_hash() != RunConfig(video=True).params_hash()
