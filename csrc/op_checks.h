// Argument checks shared by every device's kernels, so each op refuses the
// same inputs with the same one-line ValueError on CPU and CUDA.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace lamfast {

// Numbers in error messages are formatted here with snprintf, never
// streamed into c10::str. On the GPU machine's image (torch 2.11+cu130,
// Python 3.12) every check whose message streamed an int64 or a double
// crashed the process (SIGSEGV while building the message), while messages
// made of strings and ScalarTypes were raised normally: streaming a number
// goes through the locale's num_put facet of whichever libstdc++ the process
// loaded first. Strings avoid the facet.
inline std::string num(int64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  return buf;
}

inline std::string num(double v) {
  char buf[40];
  for (int digits = 15; digits <= 17; ++digits) {  // the shortest that reads back as v
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (!std::isfinite(v) || std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

inline std::string shape(at::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + num(sizes[i]);
  return out + "]";
}

inline void check_blur_path_args(const at::Tensor& image, int64_t fold, double sigma, int64_t l) {
  TORCH_CHECK_VALUE(image.dim() == 3 || image.dim() == 4,
                    "blur_path: image must be [C,H,W] or [B,C,H,W], got ", num(image.dim()), " dims");
  TORCH_CHECK_VALUE(at::isFloatingType(image.scalar_type()),
                    "blur_path: image must be a floating tensor, got ", image.scalar_type());
  TORCH_CHECK_VALUE(fold >= 1, "blur_path: fold must be >= 1, got ", num(fold));
  // inf would make every tap exp(-u^2/inf) = 1 then 0/0 after the step
  // difference: a NaN path instead of an error.
  TORCH_CHECK_VALUE(std::isfinite(sigma) && sigma >= 0.0, "blur_path: sigma must be a finite number >= 0, got ", num(sigma));
  TORCH_CHECK_VALUE(l >= 1 && l % 2 == 1, "blur_path: l must be an odd integer >= 1, got ", num(l));
  TORCH_CHECK_VALUE(image.size(-1) >= 1 && image.size(-2) >= 1, "blur_path: image must have H, W >= 1");
}

// Returns the step dimension of grads ([*lead, S, C, H, W]).
inline int64_t check_path_accumulate_args(const at::Tensor& acc, const at::Tensor& grads,
                                          const at::Tensor& deriv) {
  TORCH_CHECK_VALUE(acc.scalar_type() == at::kFloat || acc.scalar_type() == at::kDouble,
                    "path_accumulate: acc must be float32 or float64, got ", acc.scalar_type());
  TORCH_CHECK_VALUE(at::isFloatingType(grads.scalar_type()) && at::isFloatingType(deriv.scalar_type()),
                    "path_accumulate: grads and deriv must be floating tensors");
  TORCH_CHECK_VALUE(acc.dim() >= 3, "path_accumulate: acc must be [*lead, C, H, W], got ", num(acc.dim()), " dims");
  TORCH_CHECK_VALUE(grads.sizes() == deriv.sizes(),
                    "path_accumulate: grads ", shape(grads.sizes()), " and deriv ", shape(deriv.sizes()),
                    " must have the same shape");
  bool fits = grads.dim() == acc.dim() + 1;
  const int64_t step_dim = grads.dim() - 4;
  for (int64_t i = 0; fits && i < acc.dim(); ++i) fits = grads.size(i < step_dim ? i : i + 1) == acc.size(i);
  TORCH_CHECK_VALUE(fits, "path_accumulate: grads must be [*lead, S, C, H, W] for acc [*lead, C, H, W] = ",
                    shape(acc.sizes()), ", got ", shape(grads.sizes()));
  TORCH_CHECK_VALUE(acc.device() == grads.device() && acc.device() == deriv.device(),
                    "path_accumulate: acc, grads and deriv must be on one device");
  return step_dim;
}

inline void check_kde_map_args(const at::Tensor& saliency) {
  TORCH_CHECK_VALUE(saliency.dim() == 2 || saliency.dim() == 3,
                    "kde_map: saliency must be [H,W] or [B,H,W], got ", num(saliency.dim()), " dims");
  TORCH_CHECK_VALUE(at::isFloatingType(saliency.scalar_type()),
                    "kde_map: saliency must be a floating tensor, got ", saliency.scalar_type());
  TORCH_CHECK_VALUE(saliency.size(-1) >= 1 && saliency.size(-2) >= 1, "kde_map: saliency must have H, W >= 1");
}

// Returns K, the number of windows per output: windows holds (h, w, size)
// for each of K x N (window, output) pairs, window-major.
inline int64_t check_lam_objective_args(const at::Tensor& y, at::IntArrayRef windows) {
  TORCH_CHECK_VALUE(y.dim() == 4, "lam_objective: y must be [N, C, sH, sW], got ", num(y.dim()), " dims");
  TORCH_CHECK_VALUE(y.scalar_type() == at::kFloat || y.scalar_type() == at::kDouble,
                    "lam_objective: y must be float32 or float64, got ", y.scalar_type());
  const int64_t N = y.size(0);
  TORCH_CHECK_VALUE(N >= 1 && y.size(2) >= 1 && y.size(3) >= 1, "lam_objective: y must have N, sH, sW >= 1, got ",
                    shape(y.sizes()));
  const int64_t n = static_cast<int64_t>(windows.size());
  TORCH_CHECK_VALUE(n >= 3 * N && n % (3 * N) == 0,
                    "lam_objective: windows must hold (h, w, size) for K >= 1 windows of each of the ", num(N),
                    " outputs, got ", num(n), " numbers");
  for (int64_t i = 0; i < n; i += 3) {
    TORCH_CHECK_VALUE(windows[i] >= 0 && windows[i + 1] >= 0 && windows[i + 2] >= 1,
                      "lam_objective: a window needs h, w >= 0 and size >= 1, got (", num(windows[i]), ", ",
                      num(windows[i + 1]), ", ", num(windows[i + 2]), ")");
  }
  return n / (3 * N);
}

}  // namespace lamfast
