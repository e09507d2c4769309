/// @file kernels/softmax.cpp @brief Device-generic softmax entry points.
#include "kernels/softmax.h"

#include <cmath>

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

namespace {

void check_causal(const char* what, const Tensor& a, const Tensor& b, const Tensor& c) {
  check_same_device(what, a, b);
  check_same_device(what, a, c);
  check_same_dtype(what, a, b);
  check_same_dtype(what, a, c);
  EMBER_CHECK(is_floating(a.dtype()), what, ": expected floating tensors, got ", describe(a));
  EMBER_CHECK(a.dim() >= 2 && a.size(-1) == a.size(-2), what, ": expected scores [..., T, T] (square in the last two dims), got ",
              describe(a));
  for (const Tensor* t : {&a, &b, &c})
    EMBER_CHECK(t->is_contiguous() && t->shape() == a.shape(), what, ": expected contiguous tensors of one shape, got ",
                describe(a), ", ", describe(b), " and ", describe(c));
}

}  // namespace

void causal_softmax_forward(const Tensor& x, Tensor& y, double scale) {
  check_causal("causal_softmax", x, y, y);
  EMBER_CHECK(std::isfinite(scale), "causal_softmax: scale must be finite, got ", scale);
  if (x.numel() == 0) return;
  require(table_for<SoftmaxKernels>(x.device().type).causal_forward, "causal_softmax", x.device())(x, y, scale);
}

void causal_softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, double scale) {
  check_causal("causal_softmax_backward", y, gy, gx);
  EMBER_CHECK(std::isfinite(scale), "causal_softmax_backward: scale must be finite, got ", scale);
  if (y.numel() == 0) return;
  require(table_for<SoftmaxKernels>(y.device().type).causal_backward, "causal_softmax_backward", y.device())(y, gy, gx,
                                                                                                          scale);
}

}  // namespace ember::kernels
