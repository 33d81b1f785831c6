// CPU kernel of lamfast::path_accumulate: acc += sum_j grads_j * deriv_j.
// The step dimension is the 4th from the end ([*lead, S, C, H, W]), matching
// blur_path's output, so callers can feed a chunk of the path at a time.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "cpu/simd.h"
#include "op_checks.h"

namespace lamfast {
namespace {

// sum[i] (+)= g[i] * d[i] for i < n: one step of one block.
template <typename acc_t>
LAMFAST_SIMD void multiply_add(acc_t* __restrict sum, const acc_t* __restrict g, const acc_t* __restrict d,
                               int64_t n, bool first) {
  if (first) {
    for (int64_t i = 0; i < n; ++i) sum[i] = g[i] * d[i];
  } else {
    for (int64_t i = 0; i < n; ++i) sum[i] += g[i] * d[i];
  }
}

// sum[i] (+)= g0[i] * d0[i] + g1[i] * d1[i]: two steps in one pass over the
// sum buffer. One step at a time, the buffer's load and store were half the
// memory traffic; multiply_add4 takes four steps and cuts it to a fifth.
// Measured on the 2-core EPYC, 256² x 50 steps f32: 6.2 ms one step at a
// time, 5.9 ms in fours, a loop of torch's addcmul_ 7.0-9.5 ms. The op is
// bound by memory bandwidth from 256² on.
template <typename acc_t>
LAMFAST_SIMD void multiply_add2(acc_t* __restrict sum, const acc_t* __restrict g0, const acc_t* __restrict d0,
                                const acc_t* __restrict g1, const acc_t* __restrict d1, int64_t n, bool first) {
  if (first) {
    for (int64_t i = 0; i < n; ++i) sum[i] = g0[i] * d0[i] + g1[i] * d1[i];
  } else {
    for (int64_t i = 0; i < n; ++i) sum[i] += g0[i] * d0[i] + g1[i] * d1[i];
  }
}

// Four steps, g and d each being four planes E apart.
template <typename acc_t>
LAMFAST_SIMD void multiply_add4(acc_t* __restrict sum, const acc_t* __restrict g, const acc_t* __restrict d,
                                int64_t E, int64_t n, bool first) {
  const acc_t* __restrict g0 = g; const acc_t* __restrict g1 = g + E;
  const acc_t* __restrict g2 = g + 2 * E; const acc_t* __restrict g3 = g + 3 * E;
  const acc_t* __restrict d0 = d; const acc_t* __restrict d1 = d + E;
  const acc_t* __restrict d2 = d + 2 * E; const acc_t* __restrict d3 = d + 3 * E;
  if (first) {
    for (int64_t i = 0; i < n; ++i) sum[i] = (g0[i] * d0[i] + g1[i] * d1[i]) + (g2[i] * d2[i] + g3[i] * d3[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) sum[i] += (g0[i] * d0[i] + g1[i] * d1[i]) + (g2[i] * d2[i] + g3[i] * d3[i]);
  }
}

template <typename acc_t>
LAMFAST_SIMD void add_into(acc_t* __restrict acc, const acc_t* __restrict sum, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += sum[i];
}

// A task is a block of kBlock elements of one lead. It walks the steps in
// order, each step's block being one long sequential read of g and d, and
// keeps the block's sum in a buffer that stays in L2. Walking the steps
// inside short blocks instead (many strided streams at once) defeated the
// hardware prefetcher: the op then lost to a loop of torch's addcmul_ at
// 256² and above. Inputs below kSerial elements run on the calling thread,
// where a parallel region would cost more than the work and, on a shared
// machine, wait for the slowest core.
constexpr int64_t kBlock = 1 << 16;
constexpr int64_t kSerial = 1 << 16;

template <typename acc_t>
void accumulate_kernel(acc_t* acc, const acc_t* g, const acc_t* d, int64_t L, int64_t S, int64_t E) {
  const int64_t blocks_per_lead = (E + kBlock - 1) / kBlock;
  const int64_t tasks = L * blocks_per_lead;
  auto run = [&](int64_t begin, int64_t end) {
    std::vector<acc_t> sum(std::min(kBlock, E));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t lead = t / blocks_per_lead;
      const int64_t e0 = (t % blocks_per_lead) * kBlock;
      const int64_t n = std::min(kBlock, E - e0);
      int64_t s = 0;
      for (; s + 3 < S; s += 4) {
        const int64_t off = (lead * S + s) * E + e0;
        multiply_add4(sum.data(), g + off, d + off, E, n, s == 0);
      }
      for (; s + 1 < S; s += 2) {
        const int64_t off = (lead * S + s) * E + e0;
        multiply_add2(sum.data(), g + off, d + off, g + off + E, d + off + E, n, s == 0);
      }
      if (s < S) {
        const int64_t off = (lead * S + s) * E + e0;
        multiply_add(sum.data(), g + off, d + off, n, s == 0);
      }
      add_into(acc + lead * E + e0, sum.data(), n);
    }
  };
  if (2 * S * E * L <= kSerial || tasks == 1) {
    run(0, tasks);
  } else {
    at::parallel_for(0, tasks, 1, run);
  }
}

void path_accumulate_cpu(at::Tensor& acc, const at::Tensor& grads,
                         const at::Tensor& deriv) {
  const int64_t step_dim = check_path_accumulate_args(acc, grads, deriv);
  const int64_t S = grads.size(step_dim);
  if (S == 0 || acc.numel() == 0) return;
  const int64_t E = acc.size(-1) * acc.size(-2) * acc.size(-3);
  const int64_t L = acc.numel() / E;
  const at::Tensor g = grads.to(acc.scalar_type()).contiguous();
  const at::Tensor d = deriv.to(acc.scalar_type()).contiguous();
  at::Tensor out = acc.contiguous();
  AT_DISPATCH_FLOATING_TYPES(acc.scalar_type(), "path_accumulate_cpu", [&] {
    accumulate_kernel<scalar_t>(out.mutable_data_ptr<scalar_t>(), g.const_data_ptr<scalar_t>(),
                                d.const_data_ptr<scalar_t>(), L, S, E);
  });
  if (!out.is_same(acc)) acc.copy_(out);
}

}  // namespace

TORCH_LIBRARY_IMPL(lamfast, CPU, m) { m.impl("path_accumulate", &path_accumulate_cpu); }

}  // namespace lamfast
