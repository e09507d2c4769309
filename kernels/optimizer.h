/// @file kernels/optimizer.h @brief Fused multi-tensor optimizer updates (SGD with momentum/nesterov/weight decay, AdamW) with a folded gradient scale.
#pragma once
#include <cstdint>
#include <span>

#include "core/tensor.h"
#include "kernels/accumulate.h"

namespace ember::kernels {

/// Hyper-parameters of one SGD update (PyTorch's torch.optim.SGD rule, see sgd_step).
struct SgdStepOptions {
  double lr = 0.0;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  /// True on a parameter's first step with momentum: the buffer is set to the gradient (PyTorch's
  /// `buf = clone(d_p)`, no dampening) instead of being read.
  bool init_momentum = false;
};

/// Hyper-parameters of one AdamW update (PyTorch's torch.optim.AdamW rule, see adamw_step).
struct AdamWStepOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

/// Backend table. Every function makes ONE pass over all tensors of the list (CPU: one loop nest;
/// CUDA: one launch per metadata chunk of up to a few dozen tensors), reading each gradient once.
/// Both return the sum of squares of the scaled gradients (g * grad_scale) and whether any gradient
/// value was NaN/Inf, so the fused window end still reports the global norm.
struct OptimizerKernels {
  /// For each i, with g = grads[i] * grad_scale:
  ///   g += weight_decay * p;  if momentum: buf = init ? g : momentum * buf + (1 - dampening) * g,
  ///   g = nesterov ? g + momentum * buf : buf;  p -= lr * g.
  ScaleResult (*sgd_step)(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> momentum_bufs,
                          const SgdStepOptions& o, double grad_scale) = nullptr;
  /// For each i, with g = grads[i] * grad_scale and t = step (1-based):
  ///   p *= 1 - lr * weight_decay;  m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g;
  ///   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
  ScaleResult (*adamw_step)(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> exp_avgs,
                            std::span<Tensor> exp_avg_sqs, const AdamWStepOptions& o, int64_t step,
                            double grad_scale) = nullptr;
};

/// Validates (one device and dtype for all tensors, contiguous, matching numel per index, a momentum
/// buffer per parameter iff momentum != 0) and dispatches. An empty list is a no-op.
ScaleResult sgd_step(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> momentum_bufs,
                     const SgdStepOptions& o, double grad_scale = 1.0);
/// Validates (as sgd_step, plus step >= 1) and dispatches.
ScaleResult adamw_step(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> exp_avgs,
                       std::span<Tensor> exp_avg_sqs, const AdamWStepOptions& o, int64_t step,
                       double grad_scale = 1.0);

}  // namespace ember::kernels
