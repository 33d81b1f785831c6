// The blur path's geometry, shared by the CPU and CUDA blur_path kernels so
// both compute the same sigmas, taps and borders: the official LAM Gaussian
// taps (host side; the kernels get them as a table) and OpenCV's
// BORDER_REFLECT_101 index rule (host and device).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "host_device.h"

namespace lamfast {

// sigma_j of the official path, numpy.linspace(sigma, 0, fold + 1)[j]
// computed the way numpy does (start + j * step, last point exact).
inline double path_sigma(double sigma, int64_t fold, int64_t j) {
  if (j == fold) return 0.0;
  const double step = (0.0 - sigma) / static_cast<double>(fold);
  return sigma + static_cast<double>(j) * step;
}

// Normalised 1-D taps of the official isotropic l x l kernel. The 2-D kernel
// exp(-(u^2+v^2)/(2(s+1e-5)^2)) / sum is the outer product of these taps,
// which is why the blur runs as two 1-D passes.
inline std::vector<double> gaussian_taps(double s, int64_t l) {
  std::vector<double> taps(l);
  const double denom = 2.0 * (s + 1e-5) * (s + 1e-5);
  const int64_t first = -((l + 1) / 2) + 1;  // Python's (-l)//2 + 1 (floor division)
  double total = 0.0;
  for (int64_t i = 0; i < l; ++i) {
    const double u = static_cast<double>(first + i);
    taps[i] = std::exp(-(u * u) / denom);
    total += taps[i];
  }
  for (auto& t : taps) t /= total;
  return taps;
}

// cv2.borderInterpolate(p, len, BORDER_REFLECT_101); equals torch's
// "reflect" padding whenever the pad is smaller than the size, and stays
// defined for the 1-pixel and tiny images torch refuses.
LAMFAST_HD inline int64_t reflect101(int64_t p, int64_t len) {
  if (len == 1) return 0;
  while (p < 0 || p >= len) {
    p = p < 0 ? -p : 2 * len - p - 2;
  }
  return p;
}

}  // namespace lamfast
