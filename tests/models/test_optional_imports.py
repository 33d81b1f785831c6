"""Optional packages (spandrel, timm, grad-cam) import through :func:`lamfast.optional.import_optional`.

The breakage it handles is simulated with stand-in packages on ``sys.path``,
each in its own process (an operator schema, once defined, stays for the
process): a ``torchvision`` whose Python side registers a fake kernel for
``torchvision::nms`` without its compiled ops, as PyPI's CUDA torchvision
does beside a CPU torch, and a package that imports it.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

BROKEN_TORCHVISION = """
import torch
torch.library.register_fake("torchvision::nms")(lambda dets, scores, iou_threshold: dets[:, 0].long())
{more}
__version__ = "0.0.0+cuda"
"""


def _packages(tmp_path, torchvision_more: str = "", user: str = "import torchvision\nVALUE = 42\n"):
    (tmp_path / "torchvision").mkdir()
    (tmp_path / "torchvision" / "__init__.py").write_text(BROKEN_TORCHVISION.format(more=torchvision_more))
    (tmp_path / "needs_tv").mkdir()
    (tmp_path / "needs_tv" / "__init__.py").write_text(user)
    return tmp_path


def _python(code: str, path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "always", "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(path), "PATH": "/usr/bin:/bin"})


def test_broken_torchvision_is_worked_around_once_with_one_note(tmp_path):
    path = _packages(tmp_path)
    done = _python("""
        import importlib
        try:
            importlib.import_module("needs_tv")
        except RuntimeError as exc:
            print("plain import fails:", exc)
        from lamfast.optional import import_optional, torchvision_compat_applied
        mod = import_optional("needs_tv", "this check")
        again = import_optional("needs_tv", "this check")
        print("value", mod.VALUE, again is mod, torchvision_compat_applied())
    """, path)
    assert done.returncode == 0, done.stderr
    assert "plain import fails: operator torchvision::nms does not exist" in done.stdout
    assert "value 42 True True" in done.stdout
    notes = [line for line in done.stderr.splitlines() if "LamfastNote" in line]
    assert len(notes) == 1 and "torchvision 0.0.0+cuda" not in notes[0]  # no dist metadata for the stand-in
    assert "defined the torchvision::nms and qnms schemas" in notes[0]


def test_torchvision_that_still_fails_names_the_real_cause(tmp_path):
    # After nms, this torchvision needs another operator of its missing library.
    path = _packages(tmp_path, 'torch.library.register_fake("torchvision::roi_align")(lambda *a: None)')
    done = _python("""
        from lamfast.optional import MissingDependency, import_optional
        try:
            import_optional("needs_tv", "detecting models")
        except MissingDependency as exc:
            print("error:", exc)
    """, path)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("error: detecting models needs needs_tv, which cannot be imported because torchvision")
    assert "torchvision::roi_align does not exist" in line and "install the torchvision built for your torch" in line


def test_missing_and_otherwise_broken_packages(tmp_path):
    path = _packages(tmp_path, user="raise ImportError('needs_tv wants libfoo.so.3')\n")
    done = _python("""
        from lamfast.optional import MissingDependency, import_optional
        for name in ("spandrel_not_installed_here", "needs_tv"):
            try:
                import_optional(name, "the demo")
            except MissingDependency as exc:
                print(type(exc).__mro__[1].__name__, "|", exc, "|", isinstance(exc, ImportError))
    """, path)
    assert done.returncode == 0, done.stderr
    missing, broken = done.stdout.strip().splitlines()
    assert missing == ("LamfastError | the demo needs the spandrel_not_installed_here package, which is not "
                       f'installed (pip install spandrel_not_installed_here "torch=={torch.__version__}") | True')
    assert broken == "LamfastError | the demo needs needs_tv, whose import failed (ImportError: needs_tv wants libfoo.so.3) | True"


@pytest.mark.parametrize("package, argv, expect", [
    ("spandrel", ["archs"], "spandrel detects ("),
    ("timm", ["cam", "--model", "timm:resnet18", "--preview-model"], "layer4"),
])
def test_cli_reaches_optional_packages_on_this_machine(package, argv, expect):
    """As a new user runs it: the installed command, no test shim (this machine's PyPI torchvision is the
    CUDA build that cannot load against the CPU torch, where that is so)."""
    import warnings

    from lamfast.errors import LamfastNote
    from lamfast.optional import MissingDependency, import_optional

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LamfastNote)
            import_optional(package, "this test")
    except MissingDependency as exc:
        pytest.skip(f"{package} cannot be used here: {exc}")
    done = subprocess.run([sys.executable, "-m", "lamfast", *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert expect in done.stdout, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert all(line.startswith("lamfast: note: ") for line in lines), done.stderr  # no traceback, no warning
    assert sum("torchvision" in line for line in lines) <= 1, done.stderr


def test_an_architecture_named_by_module_passes_the_broken_torchvision(tmp_path):
    """``--arch package.module:Class`` (spandrel's own note suggests ``spandrel.architectures.X:X``) imports
    through the same step, and a class that really is missing still says so in one line."""
    path = _packages(tmp_path, user="import torchvision\nimport torch\nclass Net(torch.nn.Conv2d):\n"
                                   "    def __init__(self, width=3):\n        super().__init__(3, width, 1)\n")
    done = _python("""
        from lamfast.models.custom import ArchSpecError, build_custom
        model, label, notes = build_custom("needs_tv:Net", {"width": 5})
        print("built", type(model).__name__, model.out_channels, label)
        try:
            build_custom("needs_tv:Missing", {})
        except ArchSpecError as exc:
            print("error:", exc)
    """, path)
    assert done.returncode == 0, done.stderr
    built, error = done.stdout.strip().splitlines()
    assert built == "built Net 5 needs_tv:Net"
    assert error == "error: needs_tv has no 'Missing'"
    assert sum("LamfastNote" in line for line in done.stderr.splitlines()) == 1
