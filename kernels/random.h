/// @file kernels/random.h @brief Counter-based random fills (uniform, normal) that draw identical numbers on every backend.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ember::kernels {

enum class Distribution : int { Uniform, Normal };

struct RandomKernels {
  /// out (contiguous) element i = a + (b - a) * philox_uniform(seed, offset, i)   (Uniform: [a, b))
  ///                           or a + b * philox_normal(seed, offset, i)          (Normal: mean a, std b)
  void (*fill_random)(Tensor& out, Distribution dist, double a, double b, uint64_t seed, uint64_t offset) = nullptr;
};

void fill_random(Tensor& out, Distribution dist, double a, double b, uint64_t seed, uint64_t offset);

}  // namespace ember::kernels
