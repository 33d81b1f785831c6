// CPU kernel of lamfast::blur_path: every step of the official LAM
// Gaussian-blur path and its derivative in one call.
//
// Each step is two 1-D passes accumulated in double, so path and deriv are
// within one float32 rounding of the exact values. deriv_j is computed as
// fold * (gamma_j - gamma_{j-1}) in double, which by linearity equals the
// official filter2D with fold * (k_j - k_{j-1}) without the cancellation a
// float32 difference would suffer.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <vector>

#include "gaussian.h"
#include "op_checks.h"

namespace lamfast {
namespace {

// One blurred plane gamma = reflect101(x) (*) (taps x taps), all in double.
// x_pad holds the plane with its columns already reflected; row_idx maps a
// padded row to a source row.
void blur_plane(const double* x_pad, int64_t H, int64_t W, int64_t pad,
                const std::vector<double>& taps,
                const std::vector<int64_t>& row_idx, double* tmp,
                double* out) {
  const int64_t l = static_cast<int64_t>(taps.size());
  const int64_t Wp = W + 2 * pad;
  for (int64_t r = 0; r < H; ++r) {
    double* dst = tmp + r * W;
    const double* src = x_pad + r * Wp;
    for (int64_t c = 0; c < W; ++c) dst[c] = 0.0;
    for (int64_t k = 0; k < l; ++k) {
      const double g = taps[k];
      const double* s = src + k;
      for (int64_t c = 0; c < W; ++c) dst[c] += g * s[c];
    }
  }
  for (int64_t r = 0; r < H; ++r) {
    double* dst = out + r * W;
    for (int64_t c = 0; c < W; ++c) dst[c] = 0.0;
    for (int64_t k = 0; k < l; ++k) {
      const double g = taps[k];
      const double* s = tmp + row_idx[r + k] * W;
      for (int64_t c = 0; c < W; ++c) dst[c] += g * s[c];
    }
  }
}

template <typename scalar_t>
void blur_path_kernel(const at::Tensor& image, at::Tensor& path,
                      at::Tensor& deriv, int64_t fold, double sigma,
                      int64_t l) {
  const int64_t B = image.size(0), C = image.size(1);
  const int64_t H = image.size(2), W = image.size(3);
  const int64_t pad = l / 2, Wp = W + 2 * pad, plane = H * W;

  std::vector<std::vector<double>> taps(fold + 1);
  for (int64_t j = 0; j <= fold; ++j) taps[j] = gaussian_taps(path_sigma(sigma, fold, j), l);
  std::vector<int64_t> row_idx(H + 2 * pad), col_idx(Wp);
  for (int64_t i = 0; i < H + 2 * pad; ++i) row_idx[i] = reflect101(i - pad, H);
  for (int64_t i = 0; i < Wp; ++i) col_idx[i] = reflect101(i - pad, W);

  const scalar_t* x = image.const_data_ptr<scalar_t>();
  scalar_t* path_out = path.mutable_data_ptr<scalar_t>();
  scalar_t* deriv_out = deriv.mutable_data_ptr<scalar_t>();
  const double dfold = static_cast<double>(fold);

  // One task per (plane, step). A thread's range is contiguous, so it pays
  // for one extra blur (gamma_{j-1}) per plane it starts on, not per step.
  at::parallel_for(0, B * C * fold, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> x_pad(H * Wp), tmp(plane), prev(plane), cur(plane);
    int64_t loaded = -1;
    for (int64_t t = begin; t < end; ++t) {
      const int64_t bc = t / fold, j = t % fold + 1;
      const int64_t b = bc / C, c = bc % C;
      if (bc != loaded) {
        const scalar_t* src = x + bc * plane;
        for (int64_t r = 0; r < H; ++r)
          for (int64_t q = 0; q < Wp; ++q)
            x_pad[r * Wp + q] = static_cast<double>(src[r * W + col_idx[q]]);
        blur_plane(x_pad.data(), H, W, pad, taps[j - 1], row_idx, tmp.data(), prev.data());
        loaded = bc;
      }
      blur_plane(x_pad.data(), H, W, pad, taps[j], row_idx, tmp.data(), cur.data());
      const int64_t off = ((b * fold + (j - 1)) * C + c) * plane;
      for (int64_t i = 0; i < plane; ++i) {
        path_out[off + i] = static_cast<scalar_t>(cur[i]);
        deriv_out[off + i] = static_cast<scalar_t>(dfold * (cur[i] - prev[i]));
      }
      std::swap(prev, cur);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> blur_path_cpu(const at::Tensor& image,
                                                 int64_t fold, double sigma,
                                                 int64_t l) {
  check_blur_path_args(image, fold, sigma, l);
  const bool batched = image.dim() == 4;
  at::Tensor x = (batched ? image : image.unsqueeze(0)).contiguous();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  at::Tensor path = at::empty({B, fold, C, H, W}, x.options());
  at::Tensor deriv = at::empty({B, fold, C, H, W}, x.options());
  if (path.numel() > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "blur_path_cpu", [&] {
      blur_path_kernel<scalar_t>(x, path, deriv, fold, sigma, l);
    });
  }
  if (!batched) return {path.squeeze(0), deriv.squeeze(0)};
  return {path, deriv};
}

}  // namespace

TORCH_LIBRARY_IMPL(lamfast, CPU, m) { m.impl("blur_path", &blur_path_cpu); }

}  // namespace lamfast
