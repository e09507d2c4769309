/// @file kernels/loss.h @brief Fused cross-entropy (log-softmax + NLL in one pass) forward and backward kernels.
#pragma once
#include "core/tensor.h"

namespace ember::kernels {

struct LossKernels {
  /// logits: contiguous [N, C] (f32/f64); targets: contiguous i64 [N], each in [0, C) (validated by the
  /// kernel: returns the number of out-of-range targets, 0 when all are valid).
  /// losses [N] = logsumexp(logits[n]) - logits[n, target[n]];  lse [N] = logsumexp(logits[n]) (saved for backward).
  int64_t (*cross_entropy_forward)(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse) = nullptr;
  /// grad_logits [N, C] = (softmax(logits) - onehot(target)) * grad_losses[n] (grad_losses: [N]).
  void (*cross_entropy_backward)(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                 const Tensor& grad_losses, Tensor& grad_logits) = nullptr;
};

/// Validates shapes/dtypes/devices; throws an Error naming the first bad target and C when a target is
/// outside [0, C).
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse);
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& grad_losses,
                            Tensor& grad_logits);

}  // namespace ember::kernels
