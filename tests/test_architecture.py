"""The package's shape: layers that import only downwards, no import cycles, one job per module.

Imports are read from the source (module level and inside functions alike),
so a lazy import that runs back up a layer fails here too.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lamfast"

# Lowest first. A module may import its own subpackage and any lower layer, never a higher one.
LAYERS = [
    {"_version", "errors", "_ext", "bundled"},
    {"optional", "modelstate", "metrics", "targets", "imageio", "overlay", "shapes", "gaussian", "outputs",
     "machine_load"},
    {"ops", "descriptor"},
    {"path", "viz", "quality"},
    {"lam", "erf", "cam", "attr", "attention", "faithfulness", "selfcheck", "models", "viz_video", "filter_attribution",
     "filter_masking", "filter_figure"},
    {"request", "cem"},
    {"dataset"},
    {"<root>"},  # lamfast/__init__.py: the facade users import
    {"cli"},
    {"__main__"},  # python -m lamfast
]
LAYER = {part: i for i, names in enumerate(LAYERS) for part in names}


def _modules() -> dict[str, Path]:
    out = {}
    for f in LIB.rglob("*.py"):
        parts = ("lamfast",) + f.relative_to(LIB).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the lamfast modules it imports. ``from pkg import sub`` counts as importing ``pkg.sub``
    (the package is the importer's parent, already imported); ``from mod import name`` as ``mod``."""
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
                targets = subs if len(subs) == len(node.names) else [node.module, *subs]
            else:
                continue
            edges[name] |= {t for t in targets if t in modules and t != name}
    return edges


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def test_every_module_has_a_layer():
    assert {_part(m) for m in _modules()} <= set(LAYER), {_part(m) for m in _modules()} - set(LAYER)


def test_imports_only_run_down_the_layers():
    offenders = []
    for source, targets in _imports(_modules()).items():
        for target in targets:
            a, b = _part(source), _part(target)
            if a != b and LAYER[b] >= LAYER[a]:
                offenders.append(f"{source} -> {target}")
    assert offenders == []


def test_no_import_cycles():
    edges = _imports(_modules())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(_modules()):
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_front_ends_call_no_private_engine():
    """The CLI, the dataset worker and the report go through public calls: nothing outside lamfast.lam
    imports lamfast.lam.engine's private ``_compute``."""
    offenders = []
    for name, path in _modules().items():
        if name.startswith("lamfast.lam"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "lamfast.lam.engine":
                offenders.append(name)
    assert offenders == []


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_facade_reaches_nothing_of_the_dataset_runner():
    """``import lamfast`` imports the library: no lamfast.dataset module, at module level or in any function
    it can reach, and (run in a fresh process) no sqlite3."""
    import subprocess
    import sys

    reached = _reachable(_imports(_modules()), "lamfast")
    assert not [m for m in reached if m.startswith("lamfast.dataset")]
    code = ("import sys, lamfast; bad = sorted(m for m in sys.modules if m.startswith('lamfast.dataset') or "
            "m == 'sqlite3'); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_out_of_memory_is_caught_through_the_alias_older_torch_has():
    """``torch.OutOfMemoryError`` exists from torch 2.5; pyproject allows 2.4, where only the CUDA one does. Every
    catch goes through ``lamfast.path._OOM``, which picks the one this torch has."""
    direct = [f"{path.relative_to(LIB)}:{node.lineno}" for path in LIB.rglob("*.py")
              for node in ast.walk(ast.parse(path.read_text()))
              if isinstance(node, ast.Attribute) and node.attr == "OutOfMemoryError"
              and isinstance(node.value, ast.Name) and node.value.id == "torch"]
    assert not direct, direct
