"""Long work says what it costs: setup steps that last are named, an estimate comes before the path loop, the
bars count path points, a path that cannot fit memory is refused with its size, and a busy machine is named."""
from __future__ import annotations

import re
import time

import pytest
import torch
from torch import nn

import lamfast
import lamfast.lam.progress as progress_module
from lamfast.cli import main
from lamfast.errors import LAMError
from lamfast.lam.progress import PathProgress, said_if_slow


class SlowSR(nn.Module):
    """x2 nearest-free upsampler whose forward takes ``delay`` seconds."""

    def __init__(self, delay: float = 0.02) -> None:
        super().__init__()
        self.delay = delay
        self.conv = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x):
        time.sleep(self.delay)
        return nn.functional.pixel_shuffle(self.conv(x), 2)


def _image(side=16):
    return torch.rand(3, side, side, generator=torch.Generator().manual_seed(0))


class Recorder(PathProgress):
    def __init__(self):
        self.events = []

    def phase(self, text):
        self.events.append(("phase", text))

    def expect(self, points, windows):
        self.events.append(("expect", points, windows))

    def estimate(self, seconds_per_point):
        self.events.append(("estimate", seconds_per_point))

    def advance(self, points):
        self.events.append(("advance", points))

    def close(self):
        self.events.append(("close",))


def test_the_events_come_in_order_and_count_every_point():
    rec = Recorder()
    lamfast.lam_windows(SlowSR(0.0), _image(), [(0, 0, 8), (16, 16, 8)], fold=6, batch_size=2, crop="off",
                        progress=rec)
    kinds = [e[0] for e in rec.events]
    assert kinds[:2] == ["phase", "phase"] or kinds[0] == "phase"
    first_expect, first_estimate = kinds.index("expect"), kinds.index("estimate")
    assert first_expect < first_estimate < kinds.index("advance") and kinds[-1] == "close"
    assert rec.events[first_expect] == ("expect", 6, 2)  # one whole-image path shared by the two windows
    assert sum(e[1] for e in rec.events if e[0] == "advance") == 6
    assert kinds.count("estimate") == 1


def test_the_estimate_is_printed_before_the_loop_with_its_measure(capsys):
    lamfast.lam(SlowSR(0.05), _image(), 0, 0, 8, fold=6, batch_size=1, crop="off", progress=True)
    err = capsys.readouterr().err
    line = re.search(r"LAM: about (\S+ \S+) for 1 window \(([\d.]+) (ms|s) per path point, 6 points\)", err)
    assert line, err
    per = float(line.group(2)) / (1000 if line.group(3) == "ms" else 1)
    assert 0.04 < per < 1.0  # the model's 50 ms forward, measured
    assert err.count("LAM: about") == 1


def test_a_setup_step_that_lasts_is_named(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "PHASE_DELAY_S", 0.05)
    lamfast.lam(SlowSR(0.3), _image(), 0, 0, 8, fold=2, crop="off", progress=True)
    assert "LAM: forward of the model on the whole 16x16 input ..." in capsys.readouterr().err


def test_a_fast_call_names_no_step(capsys):
    lamfast.lam(SlowSR(0.0), _image(), 0, 0, 8, fold=2, crop="off", progress=True)
    assert "forward of the model" not in capsys.readouterr().err


def test_said_if_slow(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "PHASE_DELAY_S", 0.02)
    with said_if_slow("lamfast: loading the model"):
        time.sleep(0.2)
    with said_if_slow("lamfast: quick step"):
        pass
    time.sleep(0.05)
    err = capsys.readouterr().err
    assert "lamfast: loading the model ..." in err and "quick step" not in err


def test_a_path_that_cannot_fit_is_refused_with_its_size(monkeypatch):
    import lamfast.path

    monkeypatch.setattr(lamfast.path, "free_bytes", lambda device: 1 << 20)  # 1 MiB free
    model = SlowSR(0.0)
    # 50 points of [3,64,64] float32, three copies (points, derivatives, fold/2 weights)
    with pytest.raises(LAMError, match=r"the LAM path of the whole 64x64 input needs about 7\.0 MiB \(7,372,800 "
                                       r"bytes.*more than the 1\.0 MiB free on cpu: attribute a crop"):
        lamfast.lam(model, _image(64), 0, 0, 8, fold=50, crop="off")


def test_the_cli_refuses_it_in_one_line(monkeypatch, capsys, tmp_path):
    import lamfast.path

    monkeypatch.setattr(lamfast.path, "free_bytes", lambda device: 1 << 16)
    assert main(["lam", "--fold", "50", "--crop", "off", "--no-progress", "-o", str(tmp_path / "o")]) != 0
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("lamfast: note:")]
    assert len(err) == 1 and "needs about" in err[0] and "MiB free" in err[0]
    assert not (tmp_path / "o" / "result.json").exists()


def test_a_busy_machine_is_named_with_the_estimate(monkeypatch, capsys):
    import lamfast.machine_load as load

    monkeypatch.setattr(load.os, "getloadavg", lambda: (5.0, 5.0, 5.0))
    monkeypatch.setattr(load, "cores", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    lamfast.lam(SlowSR(0.0), _image(), 0, 0, 8, fold=2, crop="off", progress=True)
    err = capsys.readouterr().err
    assert "the machine is busy (load 5.0 on 2 cores) and torch runs 2 threads" in err
    assert "OMP_NUM_THREADS=1" in err
    assert torch.get_num_threads() == 2  # never changed for the user


def test_a_quiet_machine_says_nothing(monkeypatch, capsys):
    import lamfast.machine_load as load

    monkeypatch.setattr(load.os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    lamfast.lam(SlowSR(0.0), _image(), 0, 0, 8, fold=2, crop="off", progress=True)
    assert "busy" not in capsys.readouterr().err


def test_run_counts_path_points_and_estimates(tmp_path, capsys):
    from lamfast.dataset import RunConfig, run

    run(["bundled"], ["bundled"], tmp_path / "s.sqlite", RunConfig(windows="top:3:16", lam=lamfast.LAMParams(fold=10)))
    err = capsys.readouterr().err
    assert "lamfast run: about" in err and "for the 30 path points planned" in err
    assert "/30 [" in err and "point/s" in err and "windows_per_s" not in err
    assert "30/30" in err  # every point reached the bar


def test_a_certain_whole_path_is_refused_before_the_first_forward(monkeypatch):
    import lamfast.path

    calls = []

    class Counting(SlowSR):
        def forward(self, x):
            calls.append(x.shape)
            return super().forward(x)

    monkeypatch.setattr(lamfast.path, "free_bytes", lambda device: 1 << 20)
    with pytest.raises(LAMError, match="needs about"):
        lamfast.lam(Counting(0.0), _image(64), 0, 0, 8, fold=50, crop="off")
    assert calls == []  # no forward ran
