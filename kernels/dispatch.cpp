/// @file kernels/dispatch.cpp @brief Shared checks of the device-generic entry points.
#include "kernels/dispatch.h"

namespace ember::kernels {

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.device() == b.device(), op, ": expected tensors on one device, got ", describe(a), " and ",
              describe(b));
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.dtype() == b.dtype(), op, ": expected tensors of one dtype, got ", describe(a), " and ", describe(b));
}

}  // namespace ember::kernels
