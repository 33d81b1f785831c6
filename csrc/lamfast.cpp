// The Python module lamfast._C. Importing it runs the static
// TORCH_LIBRARY_IMPL initialisers of csrc/cpu and csrc/cuda, which register
// the device kernels of lamfast's ops. The ops' schemas live in one place,
// lamfast/ops/_library.py, which defines them whether or not this library
// loads; fake and autograd kernels are registered in Python too.
#include <Python.h>

extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}
