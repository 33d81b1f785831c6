// CPU kernel of lamfast::path_accumulate: acc += sum_j grads_j * deriv_j.
// The step dimension is the 4th from the end ([*lead, S, C, H, W]), matching
// blur_path's output, so callers can feed a chunk of the path at a time.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "op_checks.h"

namespace lamfast {
namespace {

template <typename acc_t>
void accumulate_kernel(acc_t* acc, const acc_t* g, const acc_t* d, int64_t L,
                       int64_t S, int64_t E) {
  constexpr int64_t kBlock = 4096;  // a block of sums stays in L1 across steps
  const int64_t blocks_per_lead = (E + kBlock - 1) / kBlock;
  at::parallel_for(0, L * blocks_per_lead, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> sum(kBlock);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t lead = t / blocks_per_lead;
      const int64_t e0 = (t % blocks_per_lead) * kBlock;
      const int64_t n = std::min(kBlock, E - e0);
      std::fill(sum.begin(), sum.begin() + n, acc_t(0));
      for (int64_t s = 0; s < S; ++s) {
        const int64_t off = (lead * S + s) * E + e0;
        const acc_t* gs = g + off;
        const acc_t* ds = d + off;
        for (int64_t i = 0; i < n; ++i) sum[i] += gs[i] * ds[i];
      }
      acc_t* a = acc + lead * E + e0;
      for (int64_t i = 0; i < n; ++i) a[i] += sum[i];
    }
  });
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
