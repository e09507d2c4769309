/// @file kernels/loss.h @brief Fused cross-entropy (log-softmax + NLL in one pass) forward and backward kernels.
#pragma once
#include <string>

#include "core/tensor.h"

namespace ember::kernels {

struct LossKernels {
  /// logits: contiguous [N, C] (f32/f64); targets: contiguous i64 [N], each in [0, C), validated by the
  /// kernel: returns the number of out-of-range targets (0 when all are valid), or 0 when the backend
  /// checks them on the device and raises a failure at the next host synchronization
  /// (kernels/device_checks.h) with raise_bad_targets.
  /// losses [N] = logsumexp(logits[n]) - logits[n, target[n]];  lse [N] = logsumexp(logits[n]) (saved for backward).
  int64_t (*cross_entropy_forward)(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse) = nullptr;
  /// grad_logits [N, C] = (softmax(logits) - onehot(target)) * grad_losses[n] (grad_losses: [N]).
  void (*cross_entropy_backward)(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                 const Tensor& grad_losses, Tensor& grad_logits) = nullptr;
};

/// Validates shapes/dtypes/devices; throws an Error naming the first bad target and C when a target is
/// outside [0, C) (on a GPU: at the next host synchronization, kernels/device_checks.h).
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse);
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& grad_losses,
                            Tensor& grad_logits);
/// Throws the Error naming the first target outside [0, classes) and how many there are, followed by
/// `where` (" (found on cuda:0 in micro-step 3 ...)" for a device-side check).
[[noreturn]] void raise_bad_targets(const Tensor& targets, int64_t classes, const std::string& where);

}  // namespace ember::kernels
