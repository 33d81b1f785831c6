"""The README's examples run and print what the README says they print.

Every ``python`` block runs as it is; each ``print(...)`` in it says what it prints in a trailing
``# -> TEXT`` comment, and the lines printed must be those, in order. Every ``python3 -m lamfast``
line of the ``bash`` blocks runs through the CLI in one folder, in the README's order: a line
with ``# -> TEXT`` runs as written and must print TEXT; the others run with short paths
(``--fold 2``), since only the numbers would change.

Placeholders the README asks the reader to fill in are filled here: ``LR_FOLDER`` with LR crops
of the bundled photo, ``edsr.pt`` by the README's own ``torch.save(...)`` line.
"""
from __future__ import annotations

import contextlib
import io
import re
import shlex

import pytest

from conftest import REPO, astronaut_crops

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.S)
PYTHON = [body for lang, body in BLOCKS if lang == "python"]
EXPECT = re.compile(r"#\s*->\s*(.+?)\s*$")
COMMANDS = [line.strip() for lang, body in BLOCKS if lang == "bash" for line in body.splitlines()
            if "python3 -m lamfast" in line]
# A path's steps only change the numbers: the examples' speed is not what is tested.
SHORT = {"lam": ["--fold", "2", "--no-progress"], "run": ["--fold", "2", "--no-progress"],
         # the README's grid has 64 windows per model; 16 show the same command working
         "explore": ["--fold", "2", "--no-progress", "--window-size", "64"]}


def _expected(body: str) -> list[str]:
    return [m.group(1) for line in body.splitlines() if (m := EXPECT.search(line))]


def test_the_readme_has_examples_and_says_what_each_prints():
    assert len(PYTHON) >= 4 and len(COMMANDS) >= 10
    for body in PYTHON:
        prints = [line for line in body.splitlines() if re.match(r"\s*print\(", line)]
        assert all(EXPECT.search(line) for line in prints), [p for p in prints if not EXPECT.search(p)]
    assert sum(bool(EXPECT.search(c)) for c in COMMANDS) >= 2


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_python_example_prints_what_the_readme_says(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(PYTHON[index], f"README.md python block {index}", "exec"), {"__name__": "readme"})  # noqa: S102
    assert out.getvalue().splitlines() == _expected(PYTHON[index])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One folder for every command, in the README's order (a report reads the run before it)."""
    import torch

    import lamfast  # noqa: F401  (the README's torch.save line names lamfast.models)

    folder = tmp_path_factory.mktemp("readme")
    (folder / "lr").mkdir()
    astronaut_crops(folder / "lr", 2, 32, (40, 24))
    save = re.search(r"`(torch\.manual_seed\(\d+\); torch\.save\(lamfast\.models\.EDSR\(.*?\), \"edsr\.pt\"\))`",
                     README)
    assert save, "the README says how edsr.pt is made, seeded"
    exec(save.group(1).replace('"edsr.pt"', repr(str(folder / "edsr.pt"))), {"torch": torch, "lamfast": lamfast})  # noqa: S102
    return folder


# one worker runs them all, in order: a command reads what the ones before it wrote into ``workdir``
@pytest.mark.xdist_group("readme_commands")
@pytest.mark.parametrize("command", COMMANDS, ids=[c.split("python3 -m lamfast ", 1)[1][:60] for c in COMMANDS])
def test_shell_example_runs(command, workdir, monkeypatch, capsys):
    from lamfast.cli import main

    monkeypatch.chdir(workdir)
    expected = EXPECT.search(command)
    argv = shlex.split(command.split("#", 1)[0].split("python3 -m lamfast", 1)[1])
    argv = [str(REPO / a) if a.startswith("lamfast/data") else "lr" if a == "LR_FOLDER" else a for a in argv]
    code = main(argv if expected else argv + SHORT.get(argv[0], []))
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "error" not in out.err, out.err
    if expected:
        assert expected.group(1) in out.out, out.out
