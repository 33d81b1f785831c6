"""How lamfast is installed: every pip call of ``scripts/setup.sh``, extras included, is pinned to the torch that is
there (a plain ``pip install "lamfast[models]"`` replaced a CPU torch with a 6 GB CUDA build); the install works
from the folder that holds the checkout; the README names only the safe way."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SETUP = REPO / "scripts" / "setup.sh"


@pytest.fixture
def fake_python(tmp_path) -> tuple[Path, Path]:
    """A stand-in for python3 that answers torch's version and logs every pip call instead of running it."""
    log = tmp_path / "pip.log"
    script = tmp_path / "python3"
    script.write_text(textwrap.dedent(f"""\
        #!/usr/bin/env bash
        if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
          args=("$@")
          for ((i = 0; i < ${{#args[@]}}; i++)); do
            if [ "${{args[$i]}}" = "-c" ]; then args[$i+1]="$(cat "${{args[$i+1]}}")"; fi
          done
          echo "${{args[*]}}" >> {log}
          exit 0
        fi
        case "$*" in
          *"print(torch.__version__)"*) echo "9.9.9+cpu" ;;
          *"import torch"*) exit 0 ;;
          *) echo "setup: lamfast (stand-in)" ;;
        esac
        """))
    script.chmod(0o755)
    return script, log


def _setup(fake, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SETUP), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": str(fake)})


@pytest.mark.parametrize("args, extras", [((), ""), (("--test",), "[test]"),
                                          (("--extras", "models,official,paper,ray"), "[models,official,paper,ray]"),
                                          (("--test", "--extras=paper"), "[test,paper]")])
def test_every_pip_call_is_pinned_to_the_installed_torch(fake_python, args, extras):
    fake, log = fake_python
    done = _setup(fake, *args)
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert calls and all("-c torch==9.9.9+cpu" in call for call in calls), calls
    install = [c for c in calls if "-e ." in c]
    assert len(install) == 1 and install[0].endswith(f"-e .{extras}") and "editable_mode=compat" in install[0]


@pytest.mark.parametrize("args, message", [(("--extras", "modles"), "unknown extra 'modles'"),
                                           (("--extras",), "--extras needs a list"),
                                           (("--gpu",), "unknown option --gpu")])
def test_a_bad_option_is_one_line_and_installs_nothing(fake_python, args, message):
    fake, log = fake_python
    done = _setup(fake, *args)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and message in done.stderr
    assert not log.exists()


def test_the_extras_setup_knows_are_the_packages_extras():
    declared = set(re.findall(r"^(\w+) = \[", (REPO / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1]
                              .split("\n[")[0], re.M))
    known = set(re.search(r'^KNOWN="([^"]+)"', SETUP.read_text(), re.M).group(1).split())
    assert known == declared - {"test"}


def test_the_readme_installs_extras_only_through_setup():
    text = (REPO / "README.md").read_text()
    for line in text.splitlines():
        if re.search(r"pip install [\"']?lamfast\[", line):
            assert "Do not" in line, line  # only where it warns against it
    assert "bash scripts/setup.sh --extras models,official,paper,ray" in text


def test_missing_packages_are_named_with_a_pinned_install():
    import torch

    from lamfast.optional import install_command

    assert install_command("ray[data]", "ray").startswith(f'pip install "ray[data]" "torch=={torch.__version__}"')


def test_commands_run_from_the_folder_that_holds_the_checkout(tmp_path):
    """``git clone`` makes a folder named lamfast without __init__.py; from its parent, Python must still
    import the package, not that folder as a namespace package."""
    (tmp_path / "lamfast").symlink_to(REPO, target_is_directory=True)
    done = subprocess.run([sys.executable, "-c", "import lamfast; print(lamfast.__file__, lamfast.lam_windows.__name__)"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1] == "lam_windows"
    done = subprocess.run([sys.executable, "-m", "lamfast", "lam", "--fold", "2", "--no-progress", "-o", "out"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("DI ") and (tmp_path / "out" / "result.json").is_file()
