/// @file ops/functional.h @brief Differentiable layer ops and losses: linear (fused weight-gradient GEMM), dropout, cross_entropy, mse_loss. Users reach them as nn::functional::* (nn/functional.h).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ember {

/// How a loss reduces its per-element terms: their mean, their sum, or none (the per-element losses).
enum class Reduction { Mean, Sum, None };

/// torch.nn.functional.cross_entropy's options (class-index targets).
struct CrossEntropyOptions {
  Reduction reduction = Reduction::Mean;
  /// Rows whose target equals it contribute nothing: loss 0 (Reduction::None), gradient 0, and Mean
  /// divides by the number of the other rows (NaN when every row is ignored, as PyTorch).
  int64_t ignore_index = -100;
  /// eps in [0, 1]: loss = (1 - eps) * nll + eps * mean over classes of -log p (PyTorch's formula).
  double label_smoothing = 0.0;
};

/// y = x @ weight^T + bias for x [N, in], weight [out, in], bias [out] or undefined. One op with its own
/// backward: dW (and db) are written by the GEMM straight into the parameter's .grad with beta = 1.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
/// Zeroes each element with probability p (counter-based mask from `gen`, or the default generator) and
/// scales the rest by 1/(1-p) when training; identity otherwise.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);
/// Fused log-softmax + NLL: logits [N, C], targets i64 [N] with values in [0, C) or -100 (ignored, as
/// PyTorch's default ignore_index). Reduction::None returns the per-row losses [N].
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, Reduction reduction = Reduction::Mean);
/// The same with ignore_index and label_smoothing (CrossEntropyOptions above).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options);
/// The number of targets (i64, any shape) not equal to ignore_index: the count Reduction::Mean divides
/// by, and the number of loss terms (tokens) of a micro-batch. Exact. On a CUDA device it reads one
/// value back (a host synchronization): count on the host copy of the targets when there is one.
int64_t count_not_ignored(const Tensor& targets, int64_t ignore_index = -100);
/// mean, sum or (None) the elementwise (a - b)^2.
Tensor mse_loss(const Tensor& a, const Tensor& b, Reduction reduction = Reduction::Mean);

}  // namespace ember
