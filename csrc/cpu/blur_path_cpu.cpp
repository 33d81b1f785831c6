// CPU kernel of lamfast::blur_path: every step of the official LAM
// Gaussian-blur path and its derivative in one call.
//
// Each step is two 1-D passes accumulated in double, so path and deriv are
// within one float32 rounding of the exact values. deriv_j is computed as
// fold * (gamma_j - gamma_{j-1}) in double, which by linearity equals the
// official filter2D with fold * (k_j - k_{j-1}) without the cancellation a
// float32 difference would suffer (a float32 conv formulation of the same
// path is off by about 6e-6 in deriv, past the op's 1e-6 tolerance).
//
// Speed (benchmarks/test_bench_ext.py): the passes and the output
// conversion are LAMFAST_SIMD loops; the work is split into runs of
// consecutive steps of one plane, handed out from a shared counter, so a
// thread that shares its core with another process does less of the work
// instead of holding up the call.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "cpu/simd.h"
#include "gaussian.h"
#include "op_checks.h"

namespace lamfast {
namespace {

// out[c] = sum_k taps[k] * rows[k][c] for c < W: one output row of either
// pass (the row pass reads one input row at l offsets, the column pass l
// input rows). The taps are symmetric (l is odd and they depend on u^2
// only, so taps[k] == taps[l-1-k] bit for bit), which halves the
// multiplications. Blocks of kVectors * kLanes outputs stay in registers
// across the taps: GCC's vector type, lowered to whatever the clone's ISA
// has. Written as plain loops, GCC re-loaded and stored every output once
// per tap, and the pass ran 2.8x slower (measured at 64² and 256²).
//
// The vector is 32 bytes, one AVX2 register: the AVX2 clone lowered a
// 64-byte type through the stack (spills on every tap), which made the
// whole op 6x slower there than on AVX-512 and 0.3-0.8x a float32 conv2d.
// At 32 bytes the AVX-512 clone is as fast as with 64 (ymm registers;
// benchmarks/results/ext_cpu_2cores.json, both clones measured).
typedef double Lanes __attribute__((vector_size(32)));
constexpr int64_t kLanes = 4;
constexpr int64_t kVectors = 8;  // 32 outputs per block: fewer didn't hide the loads' latency

LAMFAST_SIMD void filter_row(const double* const* __restrict rows, const double* __restrict taps, int64_t l,
                             int64_t W, double* __restrict out) {
  const int64_t half = l / 2;
  const double centre = taps[half];
  int64_t c0 = 0;
  for (; c0 + kVectors * kLanes <= W; c0 += kVectors * kLanes) {
    Lanes acc[kVectors], x, y;
    for (int64_t v = 0; v < kVectors; ++v) {
      __builtin_memcpy(&x, rows[half] + c0 + v * kLanes, sizeof x);
      acc[v] = centre * x;
    }
    for (int64_t k = 0; k < half; ++k) {
      const double g = taps[k];
      const double* a = rows[k] + c0;
      const double* b = rows[l - 1 - k] + c0;
      for (int64_t v = 0; v < kVectors; ++v) {
        __builtin_memcpy(&x, a + v * kLanes, sizeof x);
        __builtin_memcpy(&y, b + v * kLanes, sizeof y);
        acc[v] += g * (x + y);
      }
    }
    for (int64_t v = 0; v < kVectors; ++v) __builtin_memcpy(out + c0 + v * kLanes, &acc[v], sizeof acc[v]);
  }
  for (int64_t c = c0; c < W; ++c) {
    double acc = centre * rows[half][c];
    for (int64_t k = 0; k < half; ++k) acc += taps[k] * (rows[k][c] + rows[l - 1 - k][c]);
    out[c] = acc;
  }
}

// Row pass: out[r, c] = sum_k taps[k] * src[r, c + k], src rows Wp = W + l - 1
// wide (the columns already reflected).
void row_pass(const double* src, int64_t H, int64_t W, int64_t Wp, const double* taps, int64_t l,
              std::vector<const double*>& rows, double* out) {
  for (int64_t r = 0; r < H; ++r) {
    for (int64_t k = 0; k < l; ++k) rows[k] = src + r * Wp + k;
    filter_row(rows.data(), taps, l, W, out + r * W);
  }
}

// Column pass: out[r, c] = sum_k taps[k] * src[row_idx[r + k], c] (reflect-101 rows).
void column_pass(const double* src, int64_t H, int64_t W, const double* taps, int64_t l, const int64_t* row_idx,
                 std::vector<const double*>& rows, double* out) {
  for (int64_t r = 0; r < H; ++r) {
    for (int64_t k = 0; k < l; ++k) rows[k] = src + row_idx[r + k] * W;
    filter_row(rows.data(), taps, l, W, out + r * W);
  }
}

// path = cur, deriv = fold * (cur - prev), rounded once to the output dtype.
LAMFAST_SIMD void write_step(const double* __restrict cur, const double* __restrict prev, int64_t n, double fold,
                             float* __restrict path, float* __restrict deriv) {
  for (int64_t i = 0; i < n; ++i) {
    path[i] = static_cast<float>(cur[i]);
    deriv[i] = static_cast<float>(fold * (cur[i] - prev[i]));
  }
}

LAMFAST_SIMD void write_step(const double* __restrict cur, const double* __restrict prev, int64_t n, double fold,
                             double* __restrict path, double* __restrict deriv) {
  for (int64_t i = 0; i < n; ++i) {
    path[i] = cur[i];
    deriv[i] = fold * (cur[i] - prev[i]);
  }
}

template <typename scalar_t>
void write_step(const double* cur, const double* prev, int64_t n, double fold, scalar_t* path, scalar_t* deriv) {
  for (int64_t i = 0; i < n; ++i) {
    path[i] = static_cast<scalar_t>(cur[i]);
    deriv[i] = static_cast<scalar_t>(fold * (cur[i] - prev[i]));
  }
}

// About this many multiply-adds per task: small enough that the tasks
// balance two threads, large enough that a task's extra blur (gamma_{j-1}
// of its first step) and the counter cost little.
constexpr int64_t kTaskWork = 1 << 19;

template <typename scalar_t>
void blur_path_kernel(const at::Tensor& image, at::Tensor& path, at::Tensor& deriv, int64_t fold, double sigma,
                      int64_t l) {
  const int64_t B = image.size(0), C = image.size(1);
  const int64_t H = image.size(2), W = image.size(3);
  const int64_t pad = l / 2, Wp = W + 2 * pad, plane = H * W;

  std::vector<double> taps((fold + 1) * l);
  for (int64_t j = 0; j <= fold; ++j) {
    const std::vector<double> t = gaussian_taps(path_sigma(sigma, fold, j), l);
    std::copy(t.begin(), t.end(), taps.begin() + j * l);
  }
  std::vector<int64_t> row_idx(H + 2 * pad), col_idx(Wp);
  for (int64_t i = 0; i < H + 2 * pad; ++i) row_idx[i] = reflect101(i - pad, H);
  for (int64_t i = 0; i < Wp; ++i) col_idx[i] = reflect101(i - pad, W);

  const scalar_t* x = image.const_data_ptr<scalar_t>();
  scalar_t* path_out = path.mutable_data_ptr<scalar_t>();
  scalar_t* deriv_out = deriv.mutable_data_ptr<scalar_t>();
  const double dfold = static_cast<double>(fold);

  // A task is a run of consecutive steps of one plane: it blurs its first
  // step's predecessor once, then one blur per step.
  const int64_t step_work = std::max<int64_t>(1, 2 * l * plane);
  const int64_t run = std::clamp<int64_t>(kTaskWork / step_work, 1, fold);
  const int64_t runs_per_plane = (fold + run - 1) / run;
  const int64_t tasks = B * C * runs_per_plane;
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), tasks);

  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    std::vector<double> x_pad(H * Wp), tmp(plane), prev(plane), cur(plane);
    std::vector<const double*> rows(l);
    int64_t loaded = -1;
    for (int64_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) {
      const int64_t bc = t / runs_per_plane;
      const int64_t j0 = (t % runs_per_plane) * run + 1, j1 = std::min(fold, j0 + run - 1);
      const int64_t b = bc / C, c = bc % C;
      if (bc != loaded) {
        const scalar_t* src = x + bc * plane;
        for (int64_t r = 0; r < H; ++r)
          for (int64_t q = 0; q < Wp; ++q) x_pad[r * Wp + q] = static_cast<double>(src[r * W + col_idx[q]]);
        loaded = bc;
      }
      row_pass(x_pad.data(), H, W, Wp, taps.data() + (j0 - 1) * l, l, rows, tmp.data());
      column_pass(tmp.data(), H, W, taps.data() + (j0 - 1) * l, l, row_idx.data(), rows, prev.data());
      for (int64_t j = j0; j <= j1; ++j) {
        row_pass(x_pad.data(), H, W, Wp, taps.data() + j * l, l, rows, tmp.data());
        column_pass(tmp.data(), H, W, taps.data() + j * l, l, row_idx.data(), rows, cur.data());
        const int64_t off = ((b * fold + (j - 1)) * C + c) * plane;
        write_step(cur.data(), prev.data(), plane, dfold, path_out + off, deriv_out + off);
        std::swap(prev, cur);
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> blur_path_cpu(const at::Tensor& image, int64_t fold, double sigma, int64_t l) {
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
