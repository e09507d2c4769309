/// @file kernels/reduce.h @brief Reductions over the middle axis of a contiguous [outer, K, inner] view: sum (scaled) and max/argmax.
#pragma once
#include "core/tensor.h"

namespace ember::kernels {

enum class ReduceOp : int { Sum, Max };

struct ReduceKernels {
  /// x: contiguous, viewed as [outer, k, inner]; out: contiguous [outer, inner].
  /// Sum: out = scale * sum_k x. Max: out = max_k x, and if `indices` is non-null it receives the
  /// argmax k (dtype i64, [outer, inner]; first index among equal maxima). NaN propagates in Max.
  void (*reduce)(ReduceOp op, const Tensor& x, int64_t outer, int64_t k, int64_t inner, double scale, Tensor& out,
                 Tensor* indices) = nullptr;
  /// gx (contiguous [outer, k, inner], already zeroed) gets gy[o, i] at k = indices[o, i].
  void (*max_backward)(const Tensor& gy, const Tensor& indices, int64_t outer, int64_t k, int64_t inner,
                       Tensor& gx) = nullptr;
};

/// Validates sizes (outer*k*inner == x.numel(), out.numel() == outer*inner) and dispatches.
void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t k, int64_t inner, double scale, Tensor& out,
            Tensor* indices = nullptr);
/// Scatters gy into a zeroed gx at the argmax positions (backward of max over the middle axis).
void reduce_max_backward(const Tensor& gy, const Tensor& indices, int64_t outer, int64_t k, int64_t inner, Tensor& gx);

}  // namespace ember::kernels
