#!/usr/bin/env bash
# Everything the GPU issue needs, in one command on a GPU machine:
#   1. build lamfast with its CUDA kernels against the machine's torch;
#   2. run the whole suite twice (compiled kernels, pure-torch twins) with
#      CUDA present, so every device-parametrised test also runs on the GPU;
#   3. run benchmarks/gpu_record.py: LAM vs the official loop, the dataset
#      run, GradCAM vs pytorch-grad-cam, IG vs captum, KDE vs scipy;
#   4. write benchmarks/results/gpu_<device>.json (test counts included) and
#      the logs into OUTDIR.
#
#   bash scripts/gpu_session.sh [OUTDIR]        # default benchmarks/results
#
# Machines without internet: test-only packages the image lacks (captum,
# grad-cam, ttach, spandrel) are installed from ./.whl/*.whl when that folder
# exists (pip download them there beforehand). GPU_SESSION_STEPS picks and
# orders the steps (default "build tests bench"; bench reads the test
# counts that are there); GPU_SESSION_SUITE_TIMEOUT caps each suite (s).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUTDIR=${1:-benchmarks/results}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
export PYTHONUNBUFFERED=1

echo "== environment"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || { echo "gpu_session: no GPU" >&2; exit 1; }
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"

if compgen -G ".whl/*.whl" >/dev/null; then
  echo "== test-only packages from .whl/"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/lamfast-site .whl/*.whl \
    && export PYTHONPATH=/tmp/lamfast-site${PYTHONPATH:+:$PYTHONPATH}
fi

build() {
  echo "== build (CUDA kernels for this GPU)"
  start=$(date +%s)
  CAP=$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability(0))")
  TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$CAP} MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    "$PY" -m pip install -q --no-build-isolation --no-deps --no-index -e . 2>&1 | tail -5
  echo "build: $(( $(date +%s) - start )) s"
  "$PY" -m lamfast info || exit 1
}

tests() {
  # xdist spreads the files over workers, each with 2 CPU threads (16 threads
  # per worker on 16 cores oversubscribed the CPU 8-fold). The full log goes
  # to OUTDIR; the console gets the failures and the summary.
  XDIST=()
  "$PY" -c "import xdist" 2>/dev/null && XDIST=(-n "${GPU_SESSION_WORKERS:-8}")
  "$PY" -c "import pytest_timeout" 2>/dev/null && XDIST+=(--timeout=120)
  for suite in compiled twins; do
    echo "== tests: $suite (CUDA present)"
    env_args=(OMP_NUM_THREADS=2)
    [ "$suite" = twins ] && env_args+=(LAMFAST_DISABLE_EXT=1)
    start=$(date +%s)
    timeout "${GPU_SESSION_SUITE_TIMEOUT:-300}" env "${env_args[@]}" "$PY" -m pytest -q tests "${XDIST[@]}" -rfE \
      --tb=short -p no:cacheprovider --junitxml="$OUTDIR/junit-$suite.xml" >"$OUTDIR/tests-$suite.log" 2>&1
    echo "pytest exit $? after $(( $(date +%s) - start )) s"
    grep -E "^(FAILED|ERROR) |passed|failed|node down|Segmentation" "$OUTDIR/tests-$suite.log" | head -60
  done
}

bench() {
  echo "== benchmarks"
  NAME=$("$PY" -c "import re, torch; print(re.sub('[^a-z0-9]+', '_', torch.cuda.get_device_name(0).lower()).strip('_'))")
  "$PY" benchmarks/gpu_record.py --out "$OUTDIR/gpu_$NAME.json" --tests-junit "$OUTDIR"/junit-{compiled,twins}.xml
  echo "gpu_session: wrote $OUTDIR/gpu_$NAME.json"
}

for step in ${GPU_SESSION_STEPS:-build tests bench}; do
  "$step"
done
