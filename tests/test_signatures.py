"""The public call shapes are a contract: LAM's entry points take one keyword set, and every public signature is
pinned, so a change to one is a decision (regenerate the pin with ``python tests/test_signatures.py``) and not an
accident.
"""
from __future__ import annotations

import dataclasses
import inspect
import sys
from pathlib import Path

import pytest

import lamfast
from lamfast.lam import LAMParams, RunOptions, di_map, lam, lam_windows
from lamfast.lam.params import FIELDS

PIN = Path(__file__).parent / "data" / "public_signatures.txt"


def _keywords(fn) -> dict[str, inspect.Parameter]:
    return {n: p for n, p in inspect.signature(fn).parameters.items() if p.kind is p.KEYWORD_ONLY}


def _shape(p: inspect.Parameter) -> tuple:
    return p.name, p.kind, p.default, p.annotation


class TestOneLAMCallShape:
    """``lam`` (one window), ``lam_windows`` (many) and ``di_map`` (a grid) take the same LAM keywords."""

    def test_lam_and_lam_windows_take_the_same_keywords_apart_from_the_windows_and_errors(self):
        one, many = _keywords(lam), _keywords(lam_windows)
        assert set(many) - set(one) == {"window_size", "errors"}  # lam takes window_size by position
        assert "window_size" in inspect.signature(lam).parameters
        assert [_shape(one[n]) for n in one] == [_shape(many[n]) for n in one]
        assert list(one) == [n for n in many if n in one]  # the same order too

    def test_di_map_takes_the_same_lam_keywords(self):
        one, grid = _keywords(lam), _keywords(di_map)
        assert set(grid) - set(one) == {"keep_maps"}
        assert [_shape(one[n]) for n in one] == [_shape(grid[n]) for n in one]

    def test_the_keywords_are_the_params_fields_and_the_run_options(self):
        run = {f.name for f in dataclasses.fields(RunOptions)}
        assert set(_keywords(lam_windows)) == {"window_size", "frame", "params", "device", *FIELDS, *run}
        assert set(FIELDS) == {f.name for f in dataclasses.fields(LAMParams)}  # what defines a result, only

    def test_lam_params_is_keyword_only_and_holds_no_speed_knob(self):
        with pytest.raises(TypeError):
            LAMParams(50, 1.2)
        assert not {"batch_size", "crop", "device", "progress", "errors"} & {f.name for f in dataclasses.fields(LAMParams)}

    def test_the_package_is_the_lam_function(self):
        assert inspect.signature(lamfast.lam) == inspect.signature(lam)


def signatures() -> str:
    """One line per public function, class and method of the facades: ``module.name(signature)``."""
    from test_docs import PUBLIC

    lines = []
    for name, obj in sorted(PUBLIC.items()):
        if inspect.isclass(obj):
            lines.append(f"{name}{_text(obj)}")
            for attr, member in sorted(vars(obj).items()):
                if not attr.startswith("_") and inspect.isfunction(member):
                    lines.append(f"{name}.{attr}{_text(member)}")
        else:
            lines.append(f"{name}{_text(obj)}")
    return "\n".join(lines) + "\n"


def _text(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):  # a class without an inspectable __init__
        return "(...)"


def test_the_public_signatures_are_the_pinned_ones():
    now, pinned = signatures().splitlines(), PIN.read_text().splitlines()
    changed = sorted(set(now) ^ set(pinned))
    assert not changed, ("public signatures changed; if that is intended, regenerate the pin with "
                         "`python tests/test_signatures.py`:\n" + "\n".join(changed[:40]))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    PIN.write_text(signatures())
    print(f"wrote {PIN}")
