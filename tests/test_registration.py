"""The ops exist as real torch ops, with or without the extension."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

import lamfast
from lamfast.ops import OP_NAMES
from lamfast.ops._library import SCHEMAS

from conftest import EXT_DISABLED_BY_ENV, REPO


def test_extension_state_matches_environment():
    # A failed build must not pass CI silently on the twins alone.
    assert lamfast.ext_available() is (not EXT_DISABLED_BY_ENV), lamfast.ext_status()


def test_extension_flag_printed_after_install():
    code = "import lamfast; print(lamfast.ext_available())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(not EXT_DISABLED_BY_ENV)


def test_disable_env_forces_twin():
    code = "import lamfast; print(lamfast.ext_available(), lamfast.ext_status())"
    env = {**__import__("os").environ, "LAMFAST_DISABLE_EXT": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.startswith("False disabled by LAMFAST_DISABLE_EXT")


@pytest.mark.parametrize("name", OP_NAMES)
def test_op_is_registered(name):
    op = getattr(torch.ops.lamfast, name).default
    assert str(op._schema) == "lamfast::" + SCHEMAS[name]


def test_python_schemas_match_cpp():
    declared = re.findall(r'm\.def\("([^"]+)"\)', (REPO / "csrc" / "lamfast.cpp").read_text())
    assert sorted(declared) == sorted(SCHEMAS.values())


@pytest.mark.skipif(not lamfast.ext_available(), reason="extension disabled: no compiled kernels to look up")
@pytest.mark.parametrize("name", OP_NAMES)
def test_compiled_cpu_kernel_present(name):
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"lamfast::{name}", "CPU")
