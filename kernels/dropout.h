/// @file kernels/dropout.h @brief Dropout with a counter-based mask: element i is kept iff philox_uniform(seed, offset, i) >= p.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ember::kernels {

struct DropoutKernels {
  /// out[i] = keep(i) ? x[i] * scale : 0, with keep(i) = philox_uniform(seed, offset, i) >= p, scale = 1/(1-p).
  /// x and out contiguous, same shape. Used for the forward (x = input) and the backward (x = grad_out):
  /// the mask is recomputed from (seed, offset), never stored.
  void (*dropout)(const Tensor& x, Tensor& out, double p, uint64_t seed, uint64_t offset) = nullptr;
};

void dropout(const Tensor& x, Tensor& out, double p, uint64_t seed, uint64_t offset);

}  // namespace ember::kernels
