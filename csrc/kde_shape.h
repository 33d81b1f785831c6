// The Gaussian shape shared by the CPU and CUDA kde_map kernels:
// exp(-0.5 d^T S^-1 d) for the bandwidth-scaled covariance S, with the
// degenerate limits scipy refuses (all mass on a line: zero width across
// it; on one pixel: a delta); and the FFT size both kernels pad to.
#pragma once
#include <cmath>
#include <cstdint>

#include "host_device.h"

namespace lamfast {

struct KdeShape {
  int rank;              // 2: full covariance, 1: mass on a line, 0: one pixel
  double lam1;           // largest eigenvalue (rank 1)
  double v1x, v1y;       // its unit eigenvector (rank 1)
  double ixx, ixy, iyy;  // inverse covariance (rank 2)
};

// S = [[a, b], [b, c]] (xx, xy, yy).
LAMFAST_HD inline KdeShape kde_shape(double a, double b, double c) {
  KdeShape s{2, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0};
  const double half_diff = 0.5 * (a - c);
  s.lam1 = 0.5 * (a + c) + sqrt(half_diff * half_diff + b * b);
  const double det = a * c - b * b;
  if (!(s.lam1 > 0.0)) {
    s.rank = 0;
  } else if (!(det > 1e-12 * s.lam1 * s.lam1)) {
    s.rank = 1;
    const double ex = s.lam1 - c, ey = b, fx = b, fy = s.lam1 - a;
    const bool use_e = ex * ex + ey * ey >= fx * fx + fy * fy;
    double vx = use_e ? ex : fx, vy = use_e ? ey : fy;
    const double n = sqrt(vx * vx + vy * vy);
    if (n > 0.0) {
      vx /= n;
      vy /= n;
    } else {
      vx = a >= c ? 1.0 : 0.0;
      vy = a >= c ? 0.0 : 1.0;
    }
    s.v1x = vx;
    s.v1y = vy;
  } else {
    s.ixx = c / det;
    s.ixy = -b / det;
    s.iyy = a / det;
  }
  return s;
}

// Unnormalised density of offset (dx, dy).
LAMFAST_HD inline double kde_value(const KdeShape& s, double dx, double dy) {
  if (s.rank == 2) return exp(-0.5 * (s.ixx * dx * dx + 2.0 * s.ixy * dx * dy + s.iyy * dy * dy));
  if (s.rank == 1) {
    const double along = s.v1x * dx + s.v1y * dy, across = -s.v1y * dx + s.v1x * dy;
    return fabs(across) <= 1e-6 ? exp(-0.5 * along * along / s.lam1) : 0.0;
  }
  return (dx == 0.0 && dy == 0.0) ? 1.0 : 0.0;
}

// Smallest n >= target whose only prime factors are 2, 3 and 5: the FFT
// sizes pocketfft and cuFFT handle fastest.
inline int64_t fft_size(int64_t target) {
  for (int64_t n = target > 1 ? target : 1;; ++n) {
    int64_t m = n;
    for (int64_t p : {2, 3, 5})
      while (m % p == 0) m /= p;
    if (m == 1) return n;
  }
}

}  // namespace lamfast
