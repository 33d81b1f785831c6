// CUDA kernel of lamfast::kde_map. Same algorithm as the CPU kernel: the
// weighted scipy gaussian_kde as one FFT convolution (cuFFT through ATen),
// O(N log N) for any map size. One block per map computes its weighted
// covariance and Gaussian shape; a grid fills the kernel table.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/fft_irfft2.h>
#include <ATen/ops/fft_rfft2.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <vector>

#include "kde_shape.h"
#include "op_checks.h"

namespace lamfast {
namespace {

constexpr int kReduceThreads = 256;

// Sum of `value` over the block; every thread gets the result.
__device__ double block_sum(double value, double* scratch) {
  scratch[threadIdx.x] = value;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) scratch[threadIdx.x] += scratch[threadIdx.x + stride];
    __syncthreads();
  }
  const double total = scratch[0];
  __syncthreads();
  return total;
}

// One block per map: weighted covariance (np.cov aweights, ddof 1) times
// Scott's factor^2 with n_eff = (sum w)^2 / sum w^2, then its KDE shape.
__global__ void kde_stats_kernel(const double* __restrict__ w, int64_t H, int64_t W, KdeShape* __restrict__ shapes,
                                 char* __restrict__ has_mass) {
  __shared__ double scratch[kReduceThreads];
  const int64_t n = H * W;
  const double* wb = w + blockIdx.x * n;
  double part = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) part += wb[i];
  const double total = block_sum(part, scratch);
  if (!(total > 0.0)) {
    if (threadIdx.x == 0) {
      shapes[blockIdx.x] = kde_shape(0.0, 0.0, 0.0);
      has_mass[blockIdx.x] = 0;
    }
    return;
  }
  double sq = 0.0, mx = 0.0, my = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double wn = wb[i] / total;
    sq += wn * wn;
    mx += wn * static_cast<double>(i % W);
    my += wn * static_cast<double>(i / W);
  }
  const double sum_sq = block_sum(sq, scratch);
  const double mean_x = block_sum(mx, scratch), mean_y = block_sum(my, scratch);
  double sxx = 0.0, sxy = 0.0, syy = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double wn = wb[i] / total;
    const double dx = static_cast<double>(i % W) - mean_x, dy = static_cast<double>(i / W) - mean_y;
    sxx += wn * dx * dx;
    sxy += wn * dx * dy;
    syy += wn * dy * dy;
  }
  sxx = block_sum(sxx, scratch);
  sxy = block_sum(sxy, scratch);
  syy = block_sum(syy, scratch);
  if (threadIdx.x == 0) {
    const double unbias = 1.0 - sum_sq;  // zero when one pixel holds all the mass
    const double factor_sq = pow(1.0 / sum_sq, -2.0 / 6.0);
    const double scale = unbias > 0.0 ? factor_sq / unbias : 0.0;
    shapes[blockIdx.x] = kde_shape(sxx * scale, sxy * scale, syy * scale);
    has_mass[blockIdx.x] = 1;
  }
}

__global__ void kde_fill_kernel(const KdeShape* __restrict__ shapes, double* __restrict__ k, int64_t B, int64_t H,
                                int64_t W, int64_t Ph, int64_t Pw) {
  const int64_t total = B * Ph * Pw;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t pc = i % Pw, pr = (i / Pw) % Ph, b = i / (Pw * Ph);
    const int64_t dyi = pr < H ? pr : pr - Ph;
    const int64_t dxi = pc < W ? pc : pc - Pw;
    k[i] = (dyi > -H && dxi > -W) ? kde_value(shapes[b], static_cast<double>(dxi), static_cast<double>(dyi)) : 0.0;
  }
}

// out[b] = max(density, 0) / max over the map (zeros for a map without mass).
template <typename scalar_t>
__global__ void kde_normalise_kernel(const double* __restrict__ density, const char* __restrict__ has_mass,
                                     scalar_t* __restrict__ out, int64_t H, int64_t W, int64_t Ph, int64_t Pw) {
  __shared__ double scratch[kReduceThreads];
  const double* db = density + blockIdx.x * Ph * Pw;
  double peak = 0.0;
  for (int64_t i = threadIdx.x; i < H * W; i += blockDim.x) peak = fmax(peak, db[(i / W) * Pw + i % W]);
  scratch[threadIdx.x] = peak;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) scratch[threadIdx.x] = fmax(scratch[threadIdx.x], scratch[threadIdx.x + stride]);
    __syncthreads();
  }
  peak = scratch[0];
  const double inv = (has_mass[blockIdx.x] && peak > 0.0) ? 1.0 / peak : 0.0;
  scalar_t* ob = out + blockIdx.x * H * W;
  for (int64_t i = threadIdx.x; i < H * W; i += blockDim.x)
    ob[i] = static_cast<scalar_t>(fmax(db[(i / W) * Pw + i % W], 0.0) * inv);
}

at::Tensor kde_map_cuda(const at::Tensor& saliency) {
  check_kde_map_args(saliency);
  c10::cuda::CUDAGuard guard(saliency.device());
  const bool batched = saliency.dim() == 3;
  const at::Tensor s = (batched ? saliency : saliency.unsqueeze(0)).to(at::kDouble).contiguous();
  const int64_t B = s.size(0), H = s.size(1), W = s.size(2);
  at::Tensor out = at::empty({B, H, W}, saliency.options());
  if (B == 0) return batched ? out : out.squeeze(0);
  TORCH_CHECK_VALUE(s.isfinite().all().item<bool>() && s.ge(0.0).all().item<bool>(),
                    "kde_map: saliency must be finite and non-negative (it weights the KDE points)");

  const int64_t Ph = fft_size(2 * H - 1), Pw = fft_size(2 * W - 1);
  const auto stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor shapes = at::empty({B, static_cast<int64_t>(sizeof(KdeShape))}, s.options().dtype(at::kByte));
  at::Tensor has_mass = at::empty({B}, s.options().dtype(at::kByte));
  auto* shape_ptr = reinterpret_cast<KdeShape*>(shapes.mutable_data_ptr<uint8_t>());
  auto* mass_ptr = reinterpret_cast<char*>(has_mass.mutable_data_ptr<uint8_t>());
  kde_stats_kernel<<<static_cast<unsigned>(B), kReduceThreads, 0, stream>>>(s.const_data_ptr<double>(), H, W,
                                                                             shape_ptr, mass_ptr);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  at::Tensor kernel = at::empty({B, Ph, Pw}, s.options());
  constexpr int kThreads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((kernel.numel() + kThreads - 1) / kThreads, 65535));
  kde_fill_kernel<<<blocks, kThreads, 0, stream>>>(shape_ptr, kernel.mutable_data_ptr<double>(), B, H, W, Ph, Pw);
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  at::Tensor padded = at::zeros({B, Ph, Pw}, s.options());
  padded.narrow(1, 0, H).narrow(2, 0, W).copy_(s);
  const at::Tensor density =
      at::fft_irfft2(at::mul(at::fft_rfft2(padded), at::fft_rfft2(kernel)), std::vector<int64_t>{Ph, Pw})
          .contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, out.scalar_type(), "kde_map_cuda", [&] {
    kde_normalise_kernel<scalar_t><<<static_cast<unsigned>(B), kReduceThreads, 0, stream>>>(
        density.const_data_ptr<double>(), mass_ptr, out.mutable_data_ptr<scalar_t>(), H, W, Ph, Pw);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return batched ? out : out.squeeze(0);
}

}  // namespace

TORCH_LIBRARY_IMPL(lamfast, CUDA, m) { m.impl("kde_map", &kde_map_cuda); }

}  // namespace lamfast
