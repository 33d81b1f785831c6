// CPU kernels of lamfast::lam_objective and its backward: LAM's objective
// (the official attr_grad) fused into one pass over each output plane.
//
// For outputs y [N,C,sH,sW]: d_h = y[i,j] - y[i+1,j], d_w = y[i,j] - y[i,j+1],
// sq = d_h² + d_w² on [sH-1, sW-1], G = sqrt(sq) (robust: 0 where sq is not
// > 0), and value[k,n] = the sum of G over channels and window k of output n.
// torch computes the same with a dozen whole-tensor passes forward and more
// backward (about 18 % of a cropped LAM run's path time on CPU); here each
// plane is read once forward and once backward, row by row in cache.
//
// Rounding that decides results is torch's, bit for bit: sq is d_h*d_h +
// d_w*d_w without FMA (setup.py passes -ffp-contract=off), so an exact zero,
// which gives the compat NaN steps, is a zero here exactly when it is in
// torch; the backward's NaN pattern follows torch's IEEE arithmetic
// (0 * inf where sq is 0 outside a window, 0 * (2 d) where d is not finite).
// Sums differ from torch's by rounding only (tests: twin parity).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

#include "cpu/simd.h"
#include "cpu/task_queue.h"
#include "op_checks.h"

namespace lamfast {
namespace {

// One window, its rows [h0,h1) and columns [w0,w1) clipped to sq's extent.
struct Box {
  int64_t h0, h1, w0, w1;
};

std::vector<Box> boxes_of(at::IntArrayRef windows, int64_t K, int64_t N, int64_t gH, int64_t gW) {
  std::vector<Box> boxes(K * N);
  for (int64_t i = 0; i < K * N; ++i) {
    const int64_t h = windows[3 * i], w = windows[3 * i + 1], s = windows[3 * i + 2];
    boxes[i] = {std::min(h, gH), std::min(h + s, gH), std::min(w, gW), std::min(w + s, gW)};
  }
  return boxes;
}

// sq[j] = d_h² + d_w² for j < n (n = sW - 1); returns whether one is exactly 0.
template <typename T>
LAMFAST_SIMD bool squared_row(const T* __restrict row, const T* __restrict next, T* __restrict sq, int64_t n) {
  bool tie = false;
  for (int64_t j = 0; j < n; ++j) {
    const T dh = row[j] - next[j];
    const T dw = row[j] - row[j + 1];
    sq[j] = dh * dh + dw * dw;
    tie |= sq[j] == T(0);
  }
  return tie;
}

// sum of G over sq[0..n): the compat sqrt or the robust one.
template <typename T>
LAMFAST_SIMD T window_row_sum(const T* __restrict sq, int64_t n, bool robust) {
  constexpr int64_t kParts = 64 / sizeof(T);  // one AVX-512 register of partial sums
  T part[kParts] = {};
  int64_t j = 0;
  if (robust) {
    for (; j + kParts <= n; j += kParts)
      for (int64_t p = 0; p < kParts; ++p) part[p] += sq[j + p] > T(0) ? std::sqrt(sq[j + p]) : T(0);
  } else {
    for (; j + kParts <= n; j += kParts)
      for (int64_t p = 0; p < kParts; ++p) part[p] += std::sqrt(sq[j + p]);
  }
  T total = 0;
  for (; j < n; ++j) total += robust ? (sq[j] > T(0) ? std::sqrt(sq[j]) : T(0)) : std::sqrt(sq[j]);
  for (int64_t p = 0; p < kParts; ++p) total += part[p];
  return total;
}

constexpr int64_t kSerialWork = 1 << 15;  // elements below which one thread runs the op

template <typename T>
void forward_kernel(const T* y, const std::vector<Box>& boxes, int64_t N, int64_t C, int64_t sH, int64_t sW,
                    int64_t K, bool robust, T* value, bool* ties) {
  const int64_t gW = sW - 1;
  // Per plane partial sums (double) and tie flags, reduced over channels after.
  std::vector<double> partial(N * C * K, 0.0);
  std::vector<char> tied(N * C, 0);
  run_tasks(N * C, N * C * sH * sW, kSerialWork, [&] {
    return [&, sq = std::vector<T>(std::max<int64_t>(gW, 1))](int64_t t) mutable {
      const int64_t n = t / C;
      const T* p = y + t * sH * sW;
      double* part = partial.data() + t * K;
      bool tie = false;
      for (int64_t i = 0; i + 1 < sH; ++i) {
        tie |= squared_row(p + i * sW, p + (i + 1) * sW, sq.data(), gW);
        for (int64_t k = 0; k < K; ++k) {
          const Box& b = boxes[k * N + n];
          if (i >= b.h0 && i < b.h1 && b.w1 > b.w0) part[k] += window_row_sum(sq.data() + b.w0, b.w1 - b.w0, robust);
        }
      }
      tied[t] = tie;
    };
  });
  for (int64_t n = 0; n < N; ++n) {
    bool tie = false;
    for (int64_t k = 0; k < K; ++k) {
      double total = 0.0;
      for (int64_t c = 0; c < C; ++c) total += partial[(n * C + c) * K + k];
      value[k * N + n] = static_cast<T>(total);
    }
    for (int64_t c = 0; c < C; ++c) tie |= tied[n * C + c] != 0;
    ties[n] = tie;
  }
}

// One row i < sH-1 of the backward: dd_h[j] (j < sW) and dd_w[j] (j < sW-1),
// the gradients of d_h and d_w, from gG (the window gradient summed over
// the windows that hold each sq pixel, 0 elsewhere).
template <typename T>
LAMFAST_SIMD void backward_row(const T* __restrict row, const T* __restrict next, const T* __restrict gg,
                               T* __restrict dd_h, T* __restrict dd_w, int64_t gW, bool robust) {
  for (int64_t j = 0; j < gW; ++j) {
    const T dh = row[j] - next[j];
    const T dw = row[j] - row[j + 1];
    const T sq = dh * dh + dw * dw;
    // torch's sqrt backward: grad * (0.5 * sq^-0.5), sq^-0.5 being 1 / sqrt(sq).
    T dsq = gg[j] * (T(0.5) * (T(1) / std::sqrt(sq)));
    if (robust) dsq = sq > T(0) ? dsq : T(0);
    dd_h[j] = dsq * (T(2) * dh);
    dd_w[j] = dsq * (T(2) * dw);
  }
  // d_h's last column and d_w's last row are sliced off before the sum: a
  // zero gradient, which times a non-finite difference is NaN as in torch.
  dd_h[gW] = T(0) * (T(2) * (row[gW] - next[gW]));
}

// dy[j] = dd_h[j] - dd_h_prev[j] + dd_w[j] - dd_w[j-1], missing terms 0.
template <typename T>
LAMFAST_SIMD void input_row(const T* __restrict dd_h, const T* __restrict dd_h_prev, const T* __restrict dd_w,
                            T* __restrict dy, int64_t sW) {
  const int64_t gW = sW - 1;
  if (gW == 0) {
    dy[0] = dd_h[0] - dd_h_prev[0];
    return;
  }
  dy[0] = (dd_h[0] - dd_h_prev[0]) + dd_w[0];
  for (int64_t j = 1; j < gW; ++j) dy[j] = ((dd_h[j] - dd_h_prev[j]) + dd_w[j]) - dd_w[j - 1];
  dy[gW] = (dd_h[gW] - dd_h_prev[gW]) - dd_w[gW - 1];
}

template <typename T>
void backward_kernel(const T* grad, const T* y, const std::vector<Box>& boxes, int64_t N, int64_t C, int64_t sH,
                     int64_t sW, int64_t K, bool robust, T* dy) {
  const int64_t gW = sW - 1;
  run_tasks(N * C, N * C * sH * sW, kSerialWork, [&] {
    return [&, gg = std::vector<T>(sW), a = std::vector<T>(sW), b = std::vector<T>(sW),
            dd_w = std::vector<T>(sW)](int64_t t) mutable {
      const int64_t n = t / C;
      const T* p = y + t * sH * sW;
      T* out = dy + t * sH * sW;
      T* dd_h = a.data();
      T* dd_h_prev = b.data();
      std::fill(b.begin(), b.end(), T(0));
      for (int64_t i = 0; i < sH; ++i) {
        const T* row = p + i * sW;
        if (i + 1 < sH) {
          std::fill(gg.begin(), gg.end(), T(0));
          for (int64_t k = 0; k < K; ++k) {
            const Box& bx = boxes[k * N + n];
            if (i < bx.h0 || i >= bx.h1) continue;
            const T g = grad[k * N + n];
            for (int64_t j = bx.w0; j < bx.w1; ++j) gg[j] += g;
          }
          backward_row(row, row + sW, gg.data(), dd_h, dd_w.data(), gW, robust);
        } else {
          // The last row has no d_h; its d_w is sliced off (zero gradient).
          std::fill(dd_h, dd_h + sW, T(0));
          for (int64_t j = 0; j < gW; ++j) dd_w[j] = T(0) * (T(2) * (row[j] - row[j + 1]));
        }
        input_row(dd_h, dd_h_prev, dd_w.data(), out + i * sW, sW);
        std::swap(dd_h, dd_h_prev);
      }
    };
  });
}

std::tuple<at::Tensor, at::Tensor> lam_objective_cpu(const at::Tensor& y, at::IntArrayRef windows, bool robust) {
  const int64_t K = check_lam_objective_args(y, windows);
  const at::Tensor yc = y.contiguous();
  const int64_t N = y.size(0), C = y.size(1), sH = y.size(2), sW = y.size(3);
  at::Tensor value = at::empty({K, N}, y.options());
  at::Tensor ties = at::empty({N}, y.options().dtype(at::kBool));
  const std::vector<Box> boxes = boxes_of(windows, K, N, sH - 1, sW - 1);
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "lam_objective_cpu", [&] {
    forward_kernel<scalar_t>(yc.const_data_ptr<scalar_t>(), boxes, N, C, sH, sW, K, robust,
                             value.mutable_data_ptr<scalar_t>(), ties.mutable_data_ptr<bool>());
  });
  return {value, ties};
}

at::Tensor lam_objective_backward_cpu(const at::Tensor& grad, const at::Tensor& y, at::IntArrayRef windows,
                                      bool robust) {
  const int64_t K = check_lam_objective_args(y, windows);
  const int64_t N = y.size(0), C = y.size(1), sH = y.size(2), sW = y.size(3);
  TORCH_CHECK_VALUE(grad.dim() == 2 && grad.size(0) == K && grad.size(1) == N,
                    "lam_objective_backward: grad must be [K, N] = [", num(K), ", ", num(N), "], got ",
                    shape(grad.sizes()));
  const at::Tensor yc = y.contiguous();
  const at::Tensor gc = grad.to(y.scalar_type()).contiguous();
  at::Tensor dy = at::empty_like(yc);
  const std::vector<Box> boxes = boxes_of(windows, K, N, sH - 1, sW - 1);
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "lam_objective_backward_cpu", [&] {
    backward_kernel<scalar_t>(gc.const_data_ptr<scalar_t>(), yc.const_data_ptr<scalar_t>(), boxes, N, C, sH, sW, K,
                              robust, dy.mutable_data_ptr<scalar_t>());
  });
  return dy;
}

}  // namespace

TORCH_LIBRARY_IMPL(lamfast, CPU, m) {
  m.impl("lam_objective", &lam_objective_cpu);
  m.impl("lam_objective_backward", &lam_objective_backward_cpu);
}

}  // namespace lamfast
