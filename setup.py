"""Builds lamfast and its compiled operator library ``lamfast._C``.

CPU kernels are always built. CUDA kernels (``csrc/cuda/*.cu``) are added
only when this torch has CUDA and a CUDA toolkit is found. Install with
``pip install --no-build-isolation -e .`` so the build uses the torch that is
already installed instead of fetching another one.
"""
import glob
import os
import sys

from setuptools import setup

import torch
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))


def _extension():
    sources = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/cpu/*.cpp"))
    cuda_sources = sorted(glob.glob("csrc/cuda/*.cu"))
    debug = os.environ.get("LAMFAST_DEBUG_BUILD", "0") == "1"
    cxx = ["-O0", "-g"] if debug else ["-O3"]
    # No FMA contraction: the LAM objective kernel must round its squared
    # differences as torch does (an exact zero decides the NaN steps), and
    # the multi-versioned loops (csrc/cpu/simd.h) would otherwise contract.
    cxx.append("-ffp-contract=off")
    # sqrt never needs errno here (its arguments are sums of squares), and
    # with errno GCC cannot vectorise a loop that calls it.
    cxx.append("-fno-math-errno")
    targets = os.environ.get("LAMFAST_SIMD_TARGETS")
    if targets:
        # which clones of the SIMD loops to build (csrc/cpu/simd.h), for measuring one ISA's clone
        cxx.append("-DLAMFAST_SIMD_TARGETS=" + ",".join(f'"{t.strip()}"' for t in targets.split(",")))
    if sys.platform.startswith("linux"):
        # at::parallel_for is inlined into our kernels: without OpenMP it runs serially.
        cxx.append("-fopenmp")
    extra = {"cxx": cxx}
    use_cuda = (
        torch.version.cuda is not None
        and CUDA_HOME is not None
        and bool(cuda_sources)
        and os.environ.get("LAMFAST_NO_CUDA", "0") != "1"
    )
    common = dict(
        name="lamfast._C",
        include_dirs=[os.path.join(ROOT, "csrc")],
        extra_link_args=["-fopenmp"] if sys.platform.startswith("linux") else [],
    )
    if use_cuda:
        extra["nvcc"] = ["-O3", "--expt-relaxed-constexpr", "-std=c++20"]
        return CUDAExtension(sources=sources + cuda_sources, extra_compile_args=extra, **common)
    return CppExtension(sources=sources, extra_compile_args=extra, **common)


setup(
    ext_modules=[_extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
