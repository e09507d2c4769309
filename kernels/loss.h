/// @file kernels/loss.h @brief Fused cross-entropy (log-softmax + NLL in one pass, ignore_index, label smoothing) forward and backward kernels, and the count of non-ignored targets.
#pragma once
#include <string>

#include "core/tensor.h"

namespace ember::kernels {

/// PyTorch's options of cross_entropy that act per row: a target equal to ignore_index contributes
/// nothing (loss 0, gradient 0, not validated); label_smoothing eps in [0, 1] mixes the one-hot target
/// with the uniform distribution: loss = (1 - eps) * nll + eps * mean_j(-log p_j).
struct CrossEntropyParams {
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  /// The backward's subtrahends, (p_j - on) at the target and (p_j - off) elsewhere: on = 1 - eps + eps/C,
  /// off = eps/C, computed in double and rounded once to the logits' type by every backend.
  double on_target(int64_t classes) const { return 1.0 - label_smoothing + off_target(classes); }
  double off_target(int64_t classes) const { return label_smoothing / static_cast<double>(classes); }
};

struct LossKernels {
  /// logits: contiguous [N, C] (f32/f64); targets: contiguous i64 [N], each in [0, C) or equal to
  /// p.ignore_index, validated by the kernel: returns the number of out-of-range targets (0 when all are
  /// valid), or 0 when the backend checks them on the device and raises a failure at the next host
  /// synchronization (kernels/device_checks.h) with raise_bad_targets.
  /// lse [N] = logsumexp(logits[n]) (saved for backward); losses [N] = (1 - eps) * (lse - logits[n, t])
  /// + eps * (lse - mean_j logits[n, j]) for t = target[n], 0 where t == ignore_index (in double, one
  /// rounding).
  int64_t (*cross_entropy_forward)(const Tensor& logits, const Tensor& targets, const CrossEntropyParams& p,
                                   Tensor& losses, Tensor& lse) = nullptr;
  /// grad_logits [N, C] = (softmax(logits) - smoothed onehot(target)) * grad_losses[n] (grad_losses: [N]);
  /// rows whose target is ignore_index get 0.
  void (*cross_entropy_backward)(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                 const Tensor& grad_losses, const CrossEntropyParams& p, Tensor& grad_logits) = nullptr;
  /// count [1] (i64) = the number of targets != ignore_index (an integer sum: exact, order-free).
  void (*count_not_ignored)(const Tensor& targets, int64_t ignore_index, Tensor& count) = nullptr;
};

/// Validates shapes/dtypes/devices; throws an Error naming the first bad target and C when a target is
/// outside [0, C) (on a GPU: at the next host synchronization, kernels/device_checks.h).
/// label_smoothing must lie in [0, 1].
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse,
                           const CrossEntropyParams& p = {});
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& grad_losses,
                            Tensor& grad_logits, const CrossEntropyParams& p = {});
/// count: a 1-element i64 tensor on the targets' device; receives the number of targets != ignore_index.
void count_not_ignored(const Tensor& targets, int64_t ignore_index, Tensor& count);
/// Throws the Error naming the first target outside [0, classes) (and not ignore_index) and how many
/// there are, followed by `where` (" (found on cuda:0 in micro-step 3 ...)" for a device-side check).
[[noreturn]] void raise_bad_targets(const Tensor& targets, int64_t classes, int64_t ignore_index,
                                    const std::string& where);

}  // namespace ember::kernels
