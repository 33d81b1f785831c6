// CUDA kernel of lamfast::path_accumulate: acc += sum_j grads_j * deriv_j,
// step dim 4th from the end, accumulated in acc's dtype (float32 for half /
// bfloat16 / float32 inputs, which are read as they are, not copied).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "op_checks.h"

namespace lamfast {
namespace {

template <typename in_t, typename acc_t>
__global__ void accumulate_kernel(acc_t* __restrict__ acc, const in_t* __restrict__ g,
                                  const in_t* __restrict__ d, int64_t L, int64_t S, int64_t E) {
  const int64_t total = L * E;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t lead = i / E, e = i % E;
    const in_t* gs = g + lead * S * E + e;
    const in_t* ds = d + lead * S * E + e;
    acc_t sum = 0;
    for (int64_t s = 0; s < S; ++s) sum += static_cast<acc_t>(gs[s * E]) * static_cast<acc_t>(ds[s * E]);
    acc[i] += sum;
  }
}

void path_accumulate_cuda(at::Tensor& acc, const at::Tensor& grads, const at::Tensor& deriv) {
  const int64_t step_dim = check_path_accumulate_args(acc, grads, deriv);
  const int64_t S = grads.size(step_dim);
  if (S == 0 || acc.numel() == 0) return;
  c10::cuda::CUDAGuard guard(acc.device());
  const int64_t E = acc.size(-1) * acc.size(-2) * acc.size(-3);
  const int64_t L = acc.numel() / E;
  // Mixed input dtypes meet in acc's dtype, so neither is rounded down.
  const bool same = grads.scalar_type() == deriv.scalar_type();
  const at::Tensor g = (same ? grads : grads.to(acc.scalar_type())).contiguous();
  const at::Tensor d = (same ? deriv : deriv.to(acc.scalar_type())).contiguous();
  at::Tensor out = acc.contiguous();
  constexpr int kThreads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((L * E + kThreads - 1) / kThreads, 65535));
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(acc.scalar_type(), "path_accumulate_cuda_acc", [&] {
    using acc_t = scalar_t;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "path_accumulate_cuda_in", [&] {
      accumulate_kernel<scalar_t, acc_t><<<blocks, kThreads, 0, stream>>>(
          out.mutable_data_ptr<acc_t>(), g.const_data_ptr<scalar_t>(), d.const_data_ptr<scalar_t>(), L, S, E);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  if (!out.is_same(acc)) acc.copy_(out);
}

}  // namespace

TORCH_LIBRARY_IMPL(lamfast, CUDA, m) { m.impl("path_accumulate", &path_accumulate_cuda); }

}  // namespace lamfast
