#!/usr/bin/env bash
# Everything the CUDA issue needs on a GPU machine, in one command:
# build with the CUDA kernels, run the whole suite (CUDA tests enabled), run
# the GPU benchmarks, and save the logs under benchmarks/results/ with the
# GPU name, driver, CUDA and torch versions.
#
#   bash scripts/gpu_session.sh [OUTDIR]      # default benchmarks/results
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${1:-benchmarks/results}
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOG="$OUT/gpu-$STAMP.log"

{
  echo "== environment"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  echo "== build"
  "$PY" -m pip install -q --no-build-isolation -e . 2>&1 | tail -3
  "$PY" -m lamfast info
  echo "== tests (CUDA enabled)"
  "$PY" -m pytest -q tests -p no:cacheprovider 2>&1 | tail -25
  echo "== op benchmarks on the GPU (compiled vs twin)"
  LAMFAST_BENCH_DEVICE=cuda "$PY" -m pytest -q benchmarks/test_bench_ops.py -k "not scipy" \
    --benchmark-columns=min,median,rounds --benchmark-json="$OUT/gpu-ops-$STAMP.json" 2>&1 | grep -E "test_|passed|failed"
  echo "== LAM end to end: EDSR 64x16 x4, 128^2 LR, fold 50 (lamfast vs official-cost loop vs bare)"
  LAMFAST_BENCH_DEVICE=cuda LAMFAST_BENCH_LR=128 "$PY" -m pytest -q benchmarks/test_bench_lam.py \
    --benchmark-columns=min,median,rounds --benchmark-json="$OUT/gpu-lam-$STAMP.json" 2>&1 | grep -E "test_|passed|failed"
  echo "== receptive-field crops: per-window cost by image size, LAM_Demo EDSR, 16 windows"
  LAMFAST_BENCH_DEVICE=cuda "$PY" -m pytest -q benchmarks/test_bench_crop.py \
    --benchmark-json="$OUT/gpu-crop-$STAMP.json" 2>&1 | grep -E "interleaved|px|/|passed|failed"
} 2>&1 | tee "$LOG"
echo "wrote $LOG"
