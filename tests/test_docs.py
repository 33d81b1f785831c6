"""Every public function and class says what it does with a runnable example, and every example runs (doctest).

The public surface is what the package facades export: ``lamfast``, ``lamfast.lam``, ``lamfast.ops``,
``lamfast.models``, ``lamfast.metrics``, ``lamfast.request``, ``lamfast.dataset``, ``lamfast.cam``,
``lamfast.attr``, ``lamfast.attention``. Every ``>>>`` example anywhere in the package runs here too.
"""
from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import lamfast

FACADES = ["lamfast", "lamfast.lam", "lamfast.ops", "lamfast.models", "lamfast.metrics", "lamfast.request",
           "lamfast.dataset", "lamfast.cam", "lamfast.attr", "lamfast.attention"]


def _public() -> dict[str, object]:
    out = {}
    for name in FACADES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if name == "lamfast" and attr == "lam":
                obj = lamfast.lam.engine.lam  # the package is callable as this function
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                continue  # errors and warnings are raised by the library, not called by users
            if inspect.isfunction(obj) or inspect.isclass(obj):
                out[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return out


PUBLIC = _public()


def test_the_public_surface_is_found():
    assert len(PUBLIC) > 80 and "lamfast.lam.engine.lam_windows" in PUBLIC


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_function_and_class_has_an_example(name):
    doc = inspect.getdoc(PUBLIC[name]) or ""
    assert "Example" in doc and ">>>" in doc, f"{name} has no runnable example in its docstring"


def _modules() -> list[str]:
    names = ["lamfast"]
    for info in pkgutil.walk_packages(lamfast.__path__, "lamfast."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("module", _modules())
def test_every_example_runs(module, tmp_path, monkeypatch):
    """The module's doctests, in a fresh folder (examples may write files)."""
    monkeypatch.chdir(tmp_path)
    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(mod, module) if t.examples and t.name.startswith(module)]
    report: list[str] = []
    for test in tests:
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)[-3000:]
