/// @file kernels/dispatch.h @brief Per-device kernel tables: each op family is a struct of function pointers, one per device type.
#pragma once
#include "core/device.h"
#include "core/error.h"
#include "core/tensor.h"

#include <utility>

namespace ember::kernels {

/// The table of family `Table` for device type `t`. Backends fill it at start-up from a static Registrar (below).
template <class Table>
Table& table_for(DeviceType t) {
  static Table tables[kNumDeviceTypes];
  return tables[static_cast<int>(t)];
}

/// How a backend with several devices makes one current for the calling thread (CUDA: cudaGetDevice /
/// cudaSetDevice). Filled by the backend; null for the CPU.
struct DeviceHooks {
  int (*current)() = nullptr;
  void (*set_current)(int index) = nullptr;  ///< throws ember::Error for an index that does not exist
};

/// Makes device `d` current for the calling thread while it lives, then restores the previous one
/// (no-op for the CPU, or when `d` is already current). Every kernel entry point runs under one, so a
/// tensor on cuda:1 is computed on GPU 1 whatever the caller's current device is.
class DeviceScope {
 public:
  explicit DeviceScope(Device d) {
    const DeviceHooks& h = table_for<DeviceHooks>(d.type);
    if (h.current == nullptr || h.set_current == nullptr) return;
    previous_ = h.current();
    if (previous_ == d.index) return;
    h.set_current(d.index);
    type_ = d.type;
    active_ = true;
  }
  ~DeviceScope() {
    if (active_) table_for<DeviceHooks>(type_).set_current(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  DeviceType type_ = DeviceType::CPU;
  int previous_ = 0;
  bool active_ = false;
};

/// A kernel function with its device made current: `require(...)(args...)` runs the kernel under a
/// DeviceScope that lasts until the end of the full expression.
template <class Fn>
struct BoundKernel {
  Fn fn;
  DeviceScope scope;
  template <class... A>
  decltype(auto) operator()(A&&... args) const {
    return fn(std::forward<A>(args)...);
  }
};

/// Returns `fn` bound to device `d` (made current for the call), or throws naming the op and the
/// device when the backend did not provide it.
template <class Fn>
BoundKernel<Fn> require(Fn fn, const char* op, Device d) {
  EMBER_CHECK(fn != nullptr, "op '", op, "' has no kernel for device ", d.str(),
              d.is_cuda() ? " (Ember was built without CUDA or no CUDA backend is linked)" : "");
  return BoundKernel<Fn>{fn, DeviceScope(d)};
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

/// A backend's view of a tensor's memory: its first element as T* (device memory for a CUDA tensor), or
/// null for an undefined (optional) operand. The entry point has checked the dtype.
template <class T>
T* data_as(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

/// Common checks of entry points: both tensors on one device / of one dtype, naming the op.
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);

}  // namespace ember::kernels
