#!/usr/bin/env bash
# Compile-checks every csrc/cuda/*.cu with nvcc against the installed torch's
# headers. Needs no GPU and links nothing: CPU-only machines and CI run it
# whenever nvcc is present (scripts/test.sh). Building and running the
# kernels needs a CUDA torch: pip install --no-build-isolation -e .
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
NVCC=${NVCC:-nvcc}
command -v "$NVCC" >/dev/null || { echo "check_cuda_compile: nvcc not found" >&2; exit 1; }
TORCH_DIR=$("$PY" -c "import os, torch; print(os.path.dirname(torch.__file__))")
PY_INC=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
ABI=$("$PY" -c "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))")
ARCH=${LAMFAST_CUDA_ARCH:-90}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
status=0
for src in csrc/cuda/*.cu; do
  start=$(date +%s)
  if "$NVCC" -c "$src" -o "$OUT/$(basename "$src").o" \
      -I"$TORCH_DIR/include" -I"$TORCH_DIR/include/torch/csrc/api/include" -I"$PY_INC" -Icsrc \
      -std=c++20 --expt-relaxed-constexpr -Xcompiler -fPIC -O2 \
      -DC10_CUDA_NO_CMAKE_CONFIGURE_FILE -D_GLIBCXX_USE_CXX11_ABI="$ABI" \
      -gencode "arch=compute_$ARCH,code=sm_$ARCH"; then
    echo "check_cuda_compile: ok   $src ($(( $(date +%s) - start ))s)"
  else
    echo "check_cuda_compile: FAIL $src" >&2
    status=1
  fi
done
exit "$status"
