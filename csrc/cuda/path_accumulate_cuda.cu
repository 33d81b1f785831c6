// CUDA kernel of lamfast::path_accumulate: acc += sum_j grads_j * deriv_j,
// step dim 4th from the end, accumulated in acc's dtype (float32 for half /
// bfloat16 / float32 inputs, which are read as they are, not copied).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

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
  TORCH_CHECK_VALUE(acc.scalar_type() == at::kFloat || acc.scalar_type() == at::kDouble,
                    "path_accumulate: acc must be float32 or float64, got ", acc.scalar_type());
  TORCH_CHECK_VALUE(at::isFloatingType(grads.scalar_type()) && at::isFloatingType(deriv.scalar_type()),
                    "path_accumulate: grads and deriv must be floating tensors");
  TORCH_CHECK_VALUE(acc.dim() >= 3, "path_accumulate: acc must be [*lead, C, H, W], got ", acc.dim(), " dims");
  TORCH_CHECK_VALUE(grads.sizes() == deriv.sizes(),
                    "path_accumulate: grads ", grads.sizes(), " and deriv ", deriv.sizes(), " must have the same shape");
  bool fits = grads.dim() == acc.dim() + 1;
  const int64_t step_dim = grads.dim() - 4;
  for (int64_t i = 0; fits && i < acc.dim(); ++i) fits = grads.size(i < step_dim ? i : i + 1) == acc.size(i);
  TORCH_CHECK_VALUE(fits, "path_accumulate: grads must be [*lead, S, C, H, W] for acc [*lead, C, H, W] = ",
                    acc.sizes(), ", got ", grads.sizes());
  TORCH_CHECK_VALUE(acc.device() == grads.device() && acc.device() == deriv.device(),
                    "path_accumulate: acc, grads and deriv must be on one device");
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
