// LAMFAST_SIMD marks the CPU kernels' inner loops for function
// multi-versioning: GCC compiles them for x86-64-v4 (AVX-512), v3 (AVX2 +
// FMA) and the baseline, and the loader picks the best the CPU has (ifunc).
// The extension itself is built for the baseline so that one wheel runs
// everywhere; without this the loops were SSE2, two doubles per
// instruction, and lost to torch's own runtime-dispatched kernels.
// Elsewhere (clang, macOS, other CPUs) it is empty and the loops are
// compiled for the build's target.
//
// Contraction into FMA is off for the whole extension (setup.py passes
// -ffp-contract=off): the LAM objective must round its squared differences
// exactly as torch does, because an exact zero there decides the NaN steps.
#pragma once

// LAMFAST_SIMD_TARGETS (setup.py passes it from the environment variable of
// that name) narrows the clones, e.g. to "arch=x86-64-v3","default": the
// benchmarks measure the AVX2 clone on an AVX-512 machine that way.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#ifndef LAMFAST_SIMD_TARGETS
#define LAMFAST_SIMD_TARGETS "arch=x86-64-v4", "arch=x86-64-v3", "default"
#endif
#define LAMFAST_SIMD __attribute__((target_clones(LAMFAST_SIMD_TARGETS)))
#else
#define LAMFAST_SIMD
#endif
