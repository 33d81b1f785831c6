#!/usr/bin/env bash
# Installs lamfast into the current Python, building its C++ extension.
#
#   bash scripts/setup.sh                          # lamfast and its runtime dependencies
#   bash scripts/setup.sh --test                   # ... plus the test tools (pytest, oracles)
#   bash scripts/setup.sh --extras models,paper    # ... plus extras: any of models, official, paper, ray, parquet
#
# An installed torch is left alone; torch==2.13.0 is installed only where torch
# is missing. Every later pip call, extras included, is constrained to the torch
# that is there, so no dependency can pull a different (multi-GB CUDA) build:
# a plain `pip install "lamfast[models]"` next to a CPU torch lets pip replace
# it. The install is editable in setuptools' "compat" mode (the checkout on
# sys.path), so running from the folder that holds the checkout, where a
# folder named lamfast has no __init__.py, still imports the package.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
KNOWN="models official paper ray parquet spandrel"
WANT=()
while [ $# -gt 0 ]; do
  case "$1" in
    --test) WANT+=(test) ;;
    --extras) [ $# -ge 2 ] || { echo "setup: --extras needs a list, e.g. --extras models,paper" >&2; exit 2; }
              IFS=, read -r -a more <<<"$2"; WANT+=("${more[@]}"); shift ;;
    --extras=*) IFS=, read -r -a more <<<"${1#--extras=}"; WANT+=("${more[@]}") ;;
    *) echo "setup: unknown option $1 (use --test and/or --extras $(echo $KNOWN | tr ' ' ','))" >&2; exit 2 ;;
  esac
  shift
done
for extra in "${WANT[@]:-}"; do
  [ -z "$extra" ] || [ "$extra" = test ] || [[ " $KNOWN " == *" $extra "* ]] || {
    echo "setup: unknown extra '$extra' (known: $(echo $KNOWN | tr ' ' ','))" >&2; exit 2; }
done
EXTRAS=""
[ ${#WANT[@]} -gt 0 ] && EXTRAS="[$(IFS=,; echo "${WANT[*]}")]"

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "setup: torch not found, installing torch==2.13.0"
  "$PY" -m pip install -q torch==2.13.0
fi
TORCH_VERSION=$("$PY" -c "import torch; print(torch.__version__)")
CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==$TORCH_VERSION" >"$CONSTRAINTS"

"$PY" -m pip install -q -c "$CONSTRAINTS" "setuptools>=64" wheel ninja pybind11 numpy
echo "setup: building lamfast$EXTRAS against torch $TORCH_VERSION"
"$PY" -m pip install -q -c "$CONSTRAINTS" --no-build-isolation --config-settings editable_mode=compat -e ".$EXTRAS"
AFTER=$("$PY" -c "import torch; print(torch.__version__)")
if [ "$AFTER" != "$TORCH_VERSION" ]; then
  echo "setup: torch changed from $TORCH_VERSION to $AFTER; it must not" >&2
  exit 1
fi
"$PY" -c "import lamfast; print('setup: lamfast', lamfast.__version__, '| extension:', lamfast.ext_status())"
