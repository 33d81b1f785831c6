"""Bad output paths and bad specs are one stderr line and a non-zero exit before any model runs, and leave no
store behind (the defects: /proc/x after the whole LAM, raw NotADirectoryError / FileExistsError, spec errors
turned into failure rows, a store made in the current folder for a window spec that cannot run)."""
from __future__ import annotations

from pathlib import Path

import pytest

import lamfast
from lamfast.cli import main
from lamfast.dataset import RunConfig, run
from lamfast.errors import LamfastError
from lamfast.lam import LAMParams

PROC = Path("/proc")
needs_proc = pytest.mark.skipif(not (PROC.is_dir() and (PROC / "self").exists()), reason="needs Linux /proc")


@pytest.fixture
def no_lam(monkeypatch):
    """Any LAM that starts fails the test: the error must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("LAM ran before the error")

    monkeypatch.setattr(lamfast.lam.engine, "lam_stream", refuse)


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "a_file"
    path.write_text("")
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "s.sqlite"
    run(["bundled"], ["bundled"], path, RunConfig(windows="top:1:16", lam=LAMParams(fold=2)), progress=False)
    return path


def _one_line(capsys, *needles: str) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("lamfast: note:")]
    assert len(err) == 1 and all(n in err[0] for n in needles), err
    assert "Traceback" not in err[0] and "Error:" not in err[0].split("error:", 1)[-1], err
    return err[0]


@needs_proc
def test_lam_into_a_folder_that_cannot_be_made(capsys, no_lam):
    assert main(["lam", "-o", "/proc/lamfast_x", "--fold", "2"]) != 0
    _one_line(capsys, "/proc/lamfast_x", "cannot write in /proc")


def test_lam_into_a_folder_under_a_file(capsys, no_lam, a_file):
    assert main(["lam", "--output-dir", str(a_file / "sub"), "--fold", "2"]) != 0
    _one_line(capsys, "--output-dir", "is a file, not a directory")


@pytest.mark.parametrize("where", ["under_a_file", "proc", "a_folder"])
def test_run_into_a_store_that_cannot_be_written(capsys, no_lam, a_file, tmp_path, where):
    if where == "proc" and not PROC.is_dir():
        pytest.skip("needs /proc")
    target = {"under_a_file": a_file / "x.sqlite", "proc": PROC / "x.sqlite", "a_folder": tmp_path}[where]
    assert main(["run", "bundled", "--store", str(target), "--fold", "2", "--windows", "top:1:16",
                 "--no-progress"]) != 0
    _one_line(capsys, "--store", str(target))


def test_a_model_that_cannot_load_is_one_line_and_no_store(capsys, no_lam, tmp_path):
    store = tmp_path / "s.sqlite"
    assert main(["run", "bundled", "--model", "bundled", "--model", str(tmp_path / "nosuch.pth"),
                 "--store", str(store), "--fold", "2", "--no-progress"]) != 0
    _one_line(capsys, "checkpoint not found", "nosuch.pth")
    assert not store.exists()


@pytest.mark.parametrize("windows", ["top:0:16", "grid:0", "bogus"])
def test_a_window_spec_that_cannot_run_makes_no_store(capsys, no_lam, tmp_path, monkeypatch, windows):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "bundled", "--windows", windows, "--fold", "2", "--no-progress"]) != 0
    _one_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_library_run_checks_before_the_store(tmp_path):
    with pytest.raises(LamfastError, match="checkpoint not found"):
        run(["bundled"], [str(tmp_path / "nosuch.pth")], tmp_path / "s.sqlite", progress=False)
    assert not (tmp_path / "s.sqlite").exists()


@needs_proc
@pytest.mark.parametrize("command", [["export", "{store}", "-o", "/proc/e.csv"],
                                     ["report", "{store}", "-o", "/proc/report"],
                                     ["merge", "{store}", "-o", "/proc/m.sqlite"]])
def test_dataset_outputs_are_checked_first(capsys, store, command):
    assert main([c.format(store=store) for c in command]) != 0
    _one_line(capsys, "/proc/", "cannot write in /proc")


@needs_proc
def test_a_cam_figure_is_checked_before_the_model_loads(capsys, monkeypatch):
    import lamfast.cli.classify as cli_classify

    monkeypatch.setattr(cli_classify, "load_classifier", lambda *a, **k: pytest.fail("loaded before the check"))
    assert main(["cam", "bundled", "-o", "/proc/cam.png"]) != 0
    _one_line(capsys, "/proc/cam.png")
