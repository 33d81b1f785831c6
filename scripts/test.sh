#!/usr/bin/env bash
# The README's test command: installs lamfast with its test tools, then runs the
# suite twice, with the compiled extension and with the pure-torch twins
# (LAMFAST_DISABLE_EXT=1), slow tests included. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

bash scripts/setup.sh --test || { echo "test: setup failed" >&2; exit 1; }

# The HTML report test opens the report in headless Chromium: install Debian's
# package where we can (root with apt-get); elsewhere that one test skips.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "test: installing chromium for the report test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "test: could not install chromium; the report test will skip" >&2
fi

run_suite() {
  local label=$1
  shift
  echo "=== lamfast tests: $label ==="
  "$@"
  local rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "test: pytest collected no tests ($label): the checkout or setup is broken" >&2
    return 1
  fi
  return "$rc"
}

# Slow tests (Ray, SIGKILL, inductor) run here too. With pytest-xdist each
# suite runs in as many workers as there are cores, one torch thread each:
# on 2 cores that measured 113 s against 148 s for one process of 2 threads
# (whose convolutions scale poorly). tests/test_threads.py covers the
# kernels' threaded paths by setting its own thread count.
ARGS=(-q --runslow)
if "$PY" -c "import xdist" >/dev/null 2>&1; then
  WORKERS=${LAMFAST_TEST_WORKERS:-$("$PY" -c "import os; print(os.cpu_count() or 1)")}
  ARGS+=(-n "$WORKERS" --dist loadgroup)
  export OMP_NUM_THREADS=1
fi

status=0
run_suite "compiled extension" "$PY" -m pytest "${ARGS[@]}" tests "$@" || status=1
run_suite "pure-torch twins" env LAMFAST_DISABLE_EXT=1 "$PY" -m pytest "${ARGS[@]}" tests "$@" || status=1
if [ -x scripts/check_cuda_compile.sh ] && command -v nvcc >/dev/null 2>&1; then
  run_suite "CUDA compile check" bash scripts/check_cuda_compile.sh || status=1
fi
[ "$status" -eq 0 ] && echo "test: all suites passed" || echo "test: FAILED" >&2
exit "$status"
