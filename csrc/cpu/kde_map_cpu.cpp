// CPU kernel of lamfast::kde_map: the weighted scipy.stats.gaussian_kde that
// the official LAM vis_saliency_kde evaluates at every pixel centre.
//
// The density at pixel p is sum_i w_i exp(-0.5 (p - x_i)^T S^-1 (p - x_i)),
// i.e. the map convolved with one full-support Gaussian whose covariance S
// is shared by all points. That convolution runs through the FFT, so the
// cost is O(N log N) where scipy pays O(N^2). The constant factors scipy
// applies cancel in the final division by the maximum.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/fft_irfft2.h>
#include <ATen/ops/fft_rfft2.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

#include "kde_shape.h"
#include "op_checks.h"

namespace lamfast {
namespace {

// Bandwidth-scaled covariance of scipy's weighted gaussian_kde: weighted
// sample covariance (np.cov with aweights, ddof 1) times Scott's factor^2,
// with the effective sample size (sum w)^2 / sum w^2. Returns false when the
// map has no mass.
bool kde_covariance(const double* w, int64_t H, int64_t W, double cov[3]) {
  double total = 0.0;
  for (int64_t i = 0; i < H * W; ++i) total += w[i];
  if (!(total > 0.0)) return false;
  double sum_sq = 0.0, mx = 0.0, my = 0.0;
  for (int64_t r = 0; r < H; ++r)
    for (int64_t c = 0; c < W; ++c) {
      const double wn = w[r * W + c] / total;
      sum_sq += wn * wn;
      mx += wn * static_cast<double>(c);
      my += wn * static_cast<double>(r);
    }
  double sxx = 0.0, sxy = 0.0, syy = 0.0;
  for (int64_t r = 0; r < H; ++r)
    for (int64_t c = 0; c < W; ++c) {
      const double wn = w[r * W + c] / total;
      const double dx = static_cast<double>(c) - mx, dy = static_cast<double>(r) - my;
      sxx += wn * dx * dx;
      sxy += wn * dx * dy;
      syy += wn * dy * dy;
    }
  const double unbias = 1.0 - sum_sq;  // zero when one pixel holds all the mass
  const double factor_sq = std::pow(1.0 / sum_sq, -2.0 / 6.0);
  const double scale = unbias > 0.0 ? factor_sq / unbias : 0.0;
  cov[0] = sxx * scale;
  cov[1] = sxy * scale;
  cov[2] = syy * scale;
  return true;
}

// Fills the circular FFT grid with the KDE Gaussian (kde_shape.h) for
// every offset d in [-(H-1), H-1] x [-(W-1), W-1]; other cells stay 0.
void fill_kernel(double* k, int64_t H, int64_t W, int64_t Ph, int64_t Pw,
                 const double cov[3]) {
  const KdeShape shape = kde_shape(cov[0], cov[1], cov[2]);
  at::parallel_for(0, Ph, 1, [&](int64_t begin, int64_t end) {
    for (int64_t pr = begin; pr < end; ++pr) {
      const int64_t dyi = pr < H ? pr : pr - Ph;
      double* row = k + pr * Pw;
      for (int64_t pc = 0; pc < Pw; ++pc) {
        const int64_t dxi = pc < W ? pc : pc - Pw;
        const bool inside = dyi > -H && dxi > -W;  // the rest is the gap between +/- offsets
        row[pc] = inside ? kde_value(shape, static_cast<double>(dxi), static_cast<double>(dyi)) : 0.0;
      }
    }
  });
}

at::Tensor kde_map_cpu(const at::Tensor& saliency) {
  check_kde_map_args(saliency);
  const bool batched = saliency.dim() == 3;
  const at::Tensor s = (batched ? saliency : saliency.unsqueeze(0)).to(at::kDouble).contiguous();
  const int64_t B = s.size(0), H = s.size(1), W = s.size(2);
  at::Tensor out = at::empty({B, H, W}, saliency.options());
  if (B == 0) return batched ? out : out.squeeze(0);

  const double* w = s.const_data_ptr<double>();
  for (int64_t i = 0; i < s.numel(); ++i) {
    TORCH_CHECK_VALUE(std::isfinite(w[i]) && w[i] >= 0.0,
                      "kde_map: saliency must be finite and non-negative (it weights the KDE points)");
  }
  const int64_t Ph = fft_size(2 * H - 1), Pw = fft_size(2 * W - 1);
  at::Tensor padded = at::zeros({B, Ph, Pw}, s.options());
  at::Tensor kernel = at::empty({B, Ph, Pw}, s.options());
  std::vector<char> has_mass(B);
  double* pad_ptr = padded.mutable_data_ptr<double>();
  double* ker_ptr = kernel.mutable_data_ptr<double>();
  for (int64_t b = 0; b < B; ++b) {
    const double* wb = w + b * H * W;
    double cov[3];
    has_mass[b] = kde_covariance(wb, H, W, cov);
    if (!has_mass[b]) cov[0] = cov[1] = cov[2] = 0.0;
    fill_kernel(ker_ptr + b * Ph * Pw, H, W, Ph, Pw, cov);
    for (int64_t r = 0; r < H; ++r)
      for (int64_t c = 0; c < W; ++c) pad_ptr[(b * Ph + r) * Pw + c] = wb[r * W + c];
  }
  const at::Tensor density =
      at::fft_irfft2(at::mul(at::fft_rfft2(padded), at::fft_rfft2(kernel)),
                     std::vector<int64_t>{Ph, Pw});
  const double* dens = density.const_data_ptr<double>();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, out.scalar_type(), "kde_map_cpu", [&] {
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    for (int64_t b = 0; b < B; ++b) {
      const double* db = dens + b * Ph * Pw;
      double peak = 0.0;
      for (int64_t r = 0; r < H; ++r)
        for (int64_t c = 0; c < W; ++c) peak = std::max(peak, db[r * Pw + c]);
      // A map without mass has no density: zeros, not 0/0.
      const double inv = (has_mass[b] && peak > 0.0) ? 1.0 / peak : 0.0;
      for (int64_t r = 0; r < H; ++r)
        for (int64_t c = 0; c < W; ++c)
          o[(b * H + r) * W + c] = static_cast<scalar_t>(std::max(db[r * Pw + c], 0.0) * inv);
    }
  });
  return batched ? out : out.squeeze(0);
}

}  // namespace

TORCH_LIBRARY_IMPL(lamfast, CPU, m) { m.impl("kde_map", &kde_map_cpu); }

}  // namespace lamfast
