"""Library errors speak Python: no message raised outside lamfast/cli names a command-line flag."""
from __future__ import annotations

import ast
import re
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lamfast"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]+")


def _raised_strings(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for sub in ast.walk(node.exc):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    yield node.lineno, sub.value


def test_no_flag_in_library_errors():
    offenders = []
    for path in LIB.rglob("*.py"):
        if "cli" in path.relative_to(LIB).parts:
            continue
        for line, text in _raised_strings(ast.parse(path.read_text())):
            if FLAG.search(text):
                offenders.append(f"{path.relative_to(LIB)}:{line}: {text!r}")
    assert offenders == []
