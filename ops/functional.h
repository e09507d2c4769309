/// @file ops/functional.h @brief Differentiable layer ops and losses: linear (fused weight-gradient GEMM), dropout, cross_entropy, mse_loss. Users reach them as nn::functional::* (nn/functional.h).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ember {

enum class Reduction { Mean, Sum };

/// y = x @ weight^T + bias for x [N, in], weight [out, in], bias [out] or undefined. One op with its own
/// backward: dW (and db) are written by the GEMM straight into the parameter's .grad with beta = 1.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
/// Zeroes each element with probability p (counter-based mask from `gen`, or the default generator) and
/// scales the rest by 1/(1-p) when training; identity otherwise.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);
/// Fused log-softmax + NLL: logits [N, C], targets i64 [N] with values in [0, C).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, Reduction reduction = Reduction::Mean);
/// mean or sum of (a - b)^2.
Tensor mse_loss(const Tensor& a, const Tensor& b, Reduction reduction = Reduction::Mean);

}  // namespace ember
