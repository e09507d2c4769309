/// @file kernels/dispatch.h @brief Per-device kernel tables: each op family is a struct of function pointers, one per device type.
#pragma once
#include "core/device.h"
#include "core/error.h"
#include "core/tensor.h"

namespace ember::kernels {

/// The table of family `Table` for device type `t`. Backends fill it at start-up (register_*_kernels()).
template <class Table>
Table& table_for(DeviceType t) {
  static Table tables[kNumDeviceTypes];
  return tables[static_cast<int>(t)];
}

/// Returns `fn` or throws naming the op and the device when the backend did not provide it.
template <class Fn>
Fn require(Fn fn, const char* op, Device d) {
  EMBER_CHECK(fn != nullptr, "op '", op, "' has no kernel for device ", d.str(),
              d.is_cuda() ? " (Ember was built without CUDA or no CUDA backend is linked)" : "");
  return fn;
}

/// Backends fill their tables from static initializers: `static const Registrar r([] { ... });` at
/// namespace scope in the backend's file for that family. The libraries are shared objects (or linked
/// whole), so every initializer runs before main().
struct Registrar {
  template <class F>
  explicit Registrar(F&& fill) {
    fill();
  }
};

/// Common checks of entry points: both tensors on one device / of one dtype, naming the op.
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);

}  // namespace ember::kernels
