/// @file kernels/softmax.h @brief Row-wise softmax / log-softmax over the last dim of a contiguous [rows, n] tensor, and backward.
#pragma once
#include "core/tensor.h"

namespace ember::kernels {

struct SoftmaxKernels {
  /// y = softmax(x) or log_softmax(x) over each row; x, y contiguous [rows, n].
  void (*forward)(const Tensor& x, Tensor& y, bool log) = nullptr;
  /// gx = y * (gy - sum(gy * y))  (softmax)  or  gx = gy - exp(y) * sum(gy)  (log_softmax).
  void (*backward)(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) = nullptr;
};

void softmax_forward(const Tensor& x, Tensor& y, bool log);
void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log);

}  // namespace ember::kernels
