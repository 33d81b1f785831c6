// LAMFAST_HD marks helpers that both the CPU kernels (g++) and the CUDA
// kernels (nvcc) call, so one definition serves both devices.
#pragma once

#ifdef __CUDACC__
#define LAMFAST_HD __host__ __device__
#else
#define LAMFAST_HD
#endif
