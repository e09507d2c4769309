/// @file kernels/accumulate.h @brief The fused kernels Ember is about: grad += alpha * g (single and multi-tensor) and multi-tensor scale with norm + non-finite flag.
#pragma once
#include <span>

#include "core/tensor.h"

namespace ember::kernels {

struct ScaleResult {
  double sum_squares = 0.0;  ///< sum of squares of the scaled values (for the global norm)
  bool non_finite = false;   ///< any NaN/Inf among the values
};

struct AccumulateKernels {
  /// dst += alpha * src; both contiguous, same numel, same dtype.
  void (*accumulate)(Tensor& dst, const Tensor& src, double alpha) = nullptr;
  /// dsts[i] += alpha * srcs[i] for all i in one pass/launch.
  void (*accumulate_many)(std::span<Tensor> dsts, std::span<const Tensor> srcs, double alpha) = nullptr;
  /// ts[i] *= s for all i in one pass/launch; returns sum of squares of the results and whether any
  /// input value was NaN/Inf.
  ScaleResult (*scale_many)(std::span<Tensor> ts, double s) = nullptr;
};

void accumulate(Tensor& dst, const Tensor& src, double alpha = 1.0);
void accumulate_many(std::span<Tensor> dsts, std::span<const Tensor> srcs, double alpha = 1.0);
ScaleResult scale_many(std::span<Tensor> ts, double s);

}  // namespace ember::kernels
