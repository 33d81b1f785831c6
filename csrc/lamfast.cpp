// The one place where lamfast's operator schemas live. Device kernels only
// register implementations (csrc/cpu, csrc/cuda); fake and autograd kernels
// are registered from Python (lamfast/ops). lamfast/ops/_library.py keeps a
// copy of these strings for installs without the extension, and a test
// checks that both agree.
#include <Python.h>
#include <torch/library.h>

extern "C" {
// Importing lamfast._C from Python runs the static TORCH_LIBRARY
// initialisers below; the module itself has no Python members.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(lamfast, m) {
  m.def("blur_path(Tensor image, int fold=50, float sigma=1.2, int l=9) -> (Tensor, Tensor)");
  m.def("path_accumulate(Tensor(a!) acc, Tensor grads, Tensor deriv) -> ()");
  m.def("kde_map(Tensor saliency) -> Tensor");
  m.def("lam_objective(Tensor y, int[] windows, bool robust=False) -> (Tensor, Tensor)");
  m.def("lam_objective_backward(Tensor grad, Tensor y, int[] windows, bool robust=False) -> Tensor");
}
