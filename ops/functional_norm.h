/// @file ops/functional_norm.h @brief Differentiable layer_norm (torch.nn.functional.layer_norm): fused forward and backward kernels, Welford statistics. Users reach it as nn::functional::layer_norm (nn/functional.h).
#pragma once
#include "core/tensor.h"

namespace ember {

/// torch.nn.functional.layer_norm: normalizes x over its trailing dims `normalized_shape` (x must end
/// with them), y = (x - mean) / sqrt(var + eps) * weight + bias with the biased variance of each
/// normalized slice; weight and bias (undefined: 1 and 0) have shape normalized_shape. The statistics
/// are computed in one pass (Welford, in double on the CPU, f32 merged by Chan's formula on CUDA), so a
/// large common offset (x = 1e4 + small values) does not cancel the variance away. Differentiable in x,
/// weight and bias; the backward node saves x, the per-slice mean and rstd = 1 / sqrt(var + eps), and
/// reduces the weight and bias gradients over the slices in a fixed order (deterministic on CUDA).
/// Throws an ember::Error for an empty or non-positive normalized_shape, an input that does not end
/// with it, a non-floating input, eps <= 0, or weight/bias of another shape, dtype or device.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

/// layer_norm over the last dim of x: normalized_shape = [x.size(-1)].
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), double eps = 1e-5);

}  // namespace ember
