/// @file kernels/softmax.cpp @brief Device-generic softmax entry points.
#include "kernels/softmax.h"

#include "kernels/dispatch.h"

namespace ember::kernels {

void softmax_forward(const Tensor& x, Tensor& y, bool log) {
  check_same_device("softmax", x, y);
  check_same_dtype("softmax", x, y);
  EMBER_CHECK(is_floating(x.dtype()) && x.is_contiguous() && y.is_contiguous() && x.shape() == y.shape() &&
                  x.dim() >= 1,
              "softmax: expected contiguous floating tensors of one shape, got ", describe(x), " and ", describe(y));
  if (x.numel() == 0) return;
  require(table_for<SoftmaxKernels>(x.device().type).forward, "softmax", x.device())(x, y, log);
}

void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) {
  check_same_device("softmax_backward", y, gy);
  check_same_device("softmax_backward", y, gx);
  EMBER_CHECK(y.is_contiguous() && gy.is_contiguous() && gx.is_contiguous() && y.shape() == gy.shape() &&
                  y.shape() == gx.shape(),
              "softmax_backward: expected contiguous tensors of one shape, got ", describe(y), ", ", describe(gy), ", ",
              describe(gx));
  if (y.numel() == 0) return;
  require(table_for<SoftmaxKernels>(y.device().type).backward, "softmax_backward", y.device())(y, gy, gx, log);
}

}  // namespace ember::kernels
