/// @file kernels/optimizer.h @brief Fused multi-tensor optimizer updates (SGD with momentum/nesterov/weight decay, AdamW) with a folded gradient scale.
#pragma once
#include <cmath>
#include <cstdint>
#include <span>

#include "core/tensor.h"
#include "kernels/accumulate.h"
#include "kernels/strided.h"  // EMBER_HD

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

/// The decision a reading gate makes from the status's sum of squares and flag, written once for the
/// CPU backend and the CUDA kernels.
struct GateDecision {
  bool skip = false;
  bool clip = false;
  double clip_coef = 1.0;  ///< applies when `clip`
};
EMBER_HD inline GateDecision step_gate_decision(double sum_squares, double non_finite, double clip_norm,
                                                bool skip_non_finite) {
  GateDecision d;
  d.skip = skip_non_finite && non_finite != 0.0;
  const double norm = sqrt(sum_squares);
  d.clip = !d.skip && clip_norm > 0.0 && norm > clip_norm;  // torch.nn.utils.clip_grad_norm_
  if (d.clip) d.clip_coef = clip_norm / (norm + 1e-6);
  return d;
}

/// Backend table. Every function makes ONE pass over all tensors of the list (CPU: one loop nest;
/// CUDA: one launch per metadata chunk of up to a few dozen tensors), reading each gradient once.
/// Both meet the step status through a StepGate: reporting the sum of squares of the scaled gradients
/// (g * grad_scale) and whether any gradient value was NaN/Inf, so the fused window end still knows the
/// global norm, or reading the skip and clip decision. Neither synchronizes with the host.
struct OptimizerKernels {
  /// For each i, with g = grads[i] * grad_scale:
  ///   g += weight_decay * p;  if momentum: buf = init ? g : momentum * buf + (1 - dampening) * g,
  ///   g = nesterov ? g + momentum * buf : buf;  p -= lr * g.
  /// (With a reading gate that clips, g = (grads[i] * grad_scale) * clip_coef, each product rounded.)
  void (*sgd_step)(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> momentum_bufs,
                   const SgdStepOptions& o, double grad_scale, const StepGate& gate) = nullptr;
  /// For each i, with g = grads[i] * grad_scale and t = step (1-based):
  ///   p *= 1 - lr * weight_decay;  m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g;
  ///   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
  void (*adamw_step)(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> exp_avgs,
                     std::span<Tensor> exp_avg_sqs, const AdamWStepOptions& o, int64_t step, double grad_scale,
                     const StepGate& gate) = nullptr;
};

/// Validates (one device and dtype for all tensors, contiguous, matching numel per index, a momentum
/// buffer per parameter iff momentum != 0; a gate's status on the parameters' device) and dispatches.
/// An empty list is a no-op.
void sgd_step(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> momentum_bufs,
              const SgdStepOptions& o, double grad_scale = 1.0, const StepGate& gate = {});
/// Validates (as sgd_step, plus step >= 1) and dispatches.
void adamw_step(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> exp_avgs,
                std::span<Tensor> exp_avg_sqs, const AdamWStepOptions& o, int64_t step, double grad_scale = 1.0,
                const StepGate& gate = {});

}  // namespace ember::kernels
