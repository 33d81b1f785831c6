#!/usr/bin/env bash
# Installs lamfast into the current Python, building its C++ extension.
#
#   bash scripts/setup.sh          # lamfast and its runtime dependencies
#   bash scripts/setup.sh --test   # ... plus the test tools (pytest, pytest-benchmark)
#
# An installed torch is left alone; torch==2.13.0 is installed only where torch
# is missing. Every later pip call is constrained to the torch that is there, so
# no dependency can pull a different (multi-GB CUDA) build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=""
[ "${1:-}" = "--test" ] && EXTRAS="[test]"

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "setup: torch not found, installing torch==2.13.0"
  "$PY" -m pip install -q torch==2.13.0
fi
TORCH_VERSION=$("$PY" -c "import torch; print(torch.__version__)")
CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==$TORCH_VERSION" >"$CONSTRAINTS"

"$PY" -m pip install -q -c "$CONSTRAINTS" "setuptools>=64" wheel ninja pybind11 numpy
echo "setup: building lamfast against torch $TORCH_VERSION"
"$PY" -m pip install -q -c "$CONSTRAINTS" --no-build-isolation -e ".$EXTRAS"
"$PY" -c "import lamfast; print('setup: lamfast', lamfast.__version__, '| extension:', lamfast.ext_status())"
