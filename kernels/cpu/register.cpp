/// @file kernels/cpu/register.cpp @brief Fills every family's CPU table once.
#include <mutex>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/dispatch.h"

namespace ember::kernels {

void register_cpu_kernels() {
  static std::once_flag once;
  std::call_once(once, [] {
    cpu::register_elementwise();
    cpu::register_reduce();
    cpu::register_matmul();
    cpu::register_softmax();
    cpu::register_accumulate();
    cpu::register_random();
  });
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.device() == b.device(), op, ": expected tensors on one device, got ", describe(a), " and ",
              describe(b));
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.dtype() == b.dtype(), op, ": expected tensors of one dtype, got ", describe(a), " and ", describe(b));
}

}  // namespace ember::kernels
