// CUDA kernel of lamfast::blur_path. Same algorithm as the CPU kernel:
// separable passes accumulated in double, deriv_j = fold * (gamma_j -
// gamma_{j-1}) in double, reflect-101 borders. Pass 1 filters the rows for
// every step at once; pass 2 filters the columns and writes path and deriv.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <vector>

#include "gaussian.h"
#include "op_checks.h"

namespace lamfast {
namespace {

// rows[bc, s, r, c] = sum_k taps[s, k] * x[bc, r, reflect(c + k - pad)]
template <typename scalar_t>
__global__ void blur_rows_kernel(const scalar_t* __restrict__ x, const double* __restrict__ taps,
                                 double* __restrict__ rows, int64_t BC, int64_t S, int64_t H, int64_t W,
                                 int64_t l) {
  const int64_t total = BC * S * H * W;
  const int64_t pad = l / 2;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t c = i % W;
    const int64_t r = (i / W) % H;
    const int64_t s = (i / (W * H)) % S;
    const int64_t bc = i / (W * H * S);
    const scalar_t* src = x + (bc * H + r) * W;
    const double* t = taps + s * l;
    double acc = 0.0;
    for (int64_t k = 0; k < l; ++k) acc += t[k] * static_cast<double>(src[reflect101(c + k - pad, W)]);
    rows[i] = acc;
  }
}

// gamma_j = column pass of rows[:, j]; path/deriv written as [B, fold, C, H, W].
template <typename scalar_t>
__global__ void blur_cols_kernel(const double* __restrict__ rows, const double* __restrict__ taps,
                                 scalar_t* __restrict__ path, scalar_t* __restrict__ deriv, int64_t B,
                                 int64_t C, int64_t fold, int64_t H, int64_t W, int64_t l) {
  const int64_t S = fold + 1;
  const int64_t total = B * fold * C * H * W;
  const int64_t pad = l / 2;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t col = i % W;
    const int64_t r = (i / W) % H;
    const int64_t c = (i / (W * H)) % C;
    const int64_t j = (i / (W * H * C)) % fold + 1;
    const int64_t b = i / (W * H * C * fold);
    const int64_t bc = b * C + c;
    const double* cur_rows = rows + (bc * S + j) * H * W;
    const double* prev_rows = rows + (bc * S + j - 1) * H * W;
    const double* tc = taps + j * l;
    const double* tp = taps + (j - 1) * l;
    double cur = 0.0, prev = 0.0;
    for (int64_t k = 0; k < l; ++k) {
      const int64_t rr = reflect101(r + k - pad, H) * W + col;
      cur += tc[k] * cur_rows[rr];
      prev += tp[k] * prev_rows[rr];
    }
    path[i] = static_cast<scalar_t>(cur);
    deriv[i] = static_cast<scalar_t>(static_cast<double>(fold) * (cur - prev));
  }
}

int blocks_for(int64_t n, int threads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(b, 1), 65535));
}

std::tuple<at::Tensor, at::Tensor> blur_path_cuda(const at::Tensor& image, int64_t fold, double sigma,
                                                  int64_t l) {
  check_blur_path_args(image, fold, sigma, l);
  c10::cuda::CUDAGuard guard(image.device());
  const bool batched = image.dim() == 4;
  at::Tensor x = (batched ? image : image.unsqueeze(0)).contiguous();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), S = fold + 1;

  std::vector<double> host_taps;
  host_taps.reserve(S * l);
  for (int64_t j = 0; j <= fold; ++j) {
    const auto t = gaussian_taps(path_sigma(sigma, fold, j), l);
    host_taps.insert(host_taps.end(), t.begin(), t.end());
  }
  const at::Tensor taps =
      at::from_blob(host_taps.data(), {S, l}, at::TensorOptions().dtype(at::kDouble)).to(x.device());
  at::Tensor rows = at::empty({B * C, S, H, W}, x.options().dtype(at::kDouble));
  at::Tensor path = at::empty({B, fold, C, H, W}, x.options());
  at::Tensor deriv = at::empty({B, fold, C, H, W}, x.options());
  if (path.numel() > 0) {
    const auto stream = c10::cuda::getCurrentCUDAStream();
    constexpr int kThreads = 256;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "blur_path_cuda", [&] {
      blur_rows_kernel<scalar_t><<<blocks_for(rows.numel(), kThreads), kThreads, 0, stream>>>(
          x.const_data_ptr<scalar_t>(), taps.const_data_ptr<double>(), rows.mutable_data_ptr<double>(), B * C, S,
          H, W, l);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      blur_cols_kernel<scalar_t><<<blocks_for(path.numel(), kThreads), kThreads, 0, stream>>>(
          rows.const_data_ptr<double>(), taps.const_data_ptr<double>(), path.mutable_data_ptr<scalar_t>(),
          deriv.mutable_data_ptr<scalar_t>(), B, C, fold, H, W, l);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  if (!batched) return {path.squeeze(0), deriv.squeeze(0)};
  return {path, deriv};
}

}  // namespace

TORCH_LIBRARY_IMPL(lamfast, CUDA, m) { m.impl("blur_path", &blur_path_cuda); }

}  // namespace lamfast
