/// @file kernels/softmax.h @brief Row-wise softmax / log-softmax over the last dim of a contiguous [rows, n] tensor, the fused causal (masked, scaled) softmax of attention, and their backward.
#pragma once
#include "core/tensor.h"

namespace ember::kernels {

struct SoftmaxKernels {
  /// y = softmax(x) or log_softmax(x) over each row; x, y contiguous [rows, n].
  void (*forward)(const Tensor& x, Tensor& y, bool log) = nullptr;
  /// gx = y * (gy - sum(gy * y))  (softmax)  or  gx = gy - exp(y) * sum(gy)  (log_softmax).
  void (*backward)(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) = nullptr;
  /// Causal softmax over x, y contiguous [..., T, T]: for row i of each T x T matrix,
  /// y[i, j] = exp(scale * x[i, j] - m) / sum_{j' <= i} exp(scale * x[i, j'] - m) for j <= i (m the row's
  /// max over j <= i) and exactly 0 for j > i. Masked entries of x are never read.
  void (*causal_forward)(const Tensor& x, Tensor& y, double scale) = nullptr;
  /// gx[i, j] = scale * y[i, j] * (gy[i, j] - sum_{j' <= i} y[i, j'] gy[i, j']) for j <= i, exactly 0
  /// for j > i (masked entries of y and gy are never read).
  void (*causal_backward)(const Tensor& y, const Tensor& gy, Tensor& gx, double scale) = nullptr;
};

void softmax_forward(const Tensor& x, Tensor& y, bool log);
void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log);
/// Fused scale + causal mask + softmax (SoftmaxKernels::causal_forward); validates devices, dtypes,
/// a square contiguous [..., T, T] layout and a finite scale.
void causal_softmax_forward(const Tensor& x, Tensor& y, double scale);
void causal_softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, double scale);

}  // namespace ember::kernels
