/// @file kernels/batchnorm.h @brief Batch normalization kernels over x viewed as [N, C, S]: per-channel statistics, normalize, backward (dgamma/dbeta reduction + dx), running-stats update.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ember::kernels {

/// x [N, C, *] as the kernels see it: n samples, c channels, s positions per (sample, channel).
struct BatchNormShape {
  int64_t n = 0, c = 0, s = 1;
  int64_t per_channel() const { return n * s; }
};

/// The shape of contiguous x [N, C] or [N, C, *]; throws naming x for fewer than 2 dims.
BatchNormShape batch_norm_shape(const Tensor& x);

/// Contract of every function: x-shaped tensors are contiguous, per-channel tensors are contiguous [C],
/// one device and dtype (validated by the entry points below). invstd[c] = 1 / sqrt(var[c] + eps) is
/// computed in the input's type; an undefined weight / bias means 1 / 0.
struct BatchNormKernels {
  /// mean[c] and the biased variance var[c] = M2[c] / (N * S) over the n * s values of channel c.
  void (*stats)(const Tensor& x, const BatchNormShape& sh, Tensor& mean, Tensor& var) = nullptr;
  /// y = fma((x - mean[c]) * invstd[c], weight[c], bias[c]).
  void (*normalize)(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight, const Tensor& bias,
                    double eps, const BatchNormShape& sh, Tensor& y) = nullptr;
  /// The reduction pass of backward: sum_dy[c] = sum dy (= dbeta), sum_dy_xhat[c] = sum dy * xhat (= dgamma)
  /// with xhat = (x - mean[c]) * invstd[c].
  void (*backward_reduce)(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, double eps,
                          const BatchNormShape& sh, Tensor& sum_dy, Tensor& sum_dy_xhat) = nullptr;
  /// The elementwise pass: dx = fma(-xhat, sum_dy_xhat[c] / M, dy - sum_dy[c] / M) * (invstd[c] * weight[c])
  /// with M = N * S when `batch_stats` (training: mean/var were computed from x), else dx = dy * invstd[c] *
  /// weight[c] (evaluation: the statistics are constants; sum_dy / sum_dy_xhat are not read).
  void (*backward_input)(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight,
                         const Tensor& sum_dy, const Tensor& sum_dy_xhat, double eps, bool batch_stats,
                         const BatchNormShape& sh, Tensor& dx) = nullptr;
  /// running_mean = fma(momentum, mean, (1 - momentum) * running_mean), running_var likewise with
  /// var * unbias; num_batches_tracked (i64 scalar; may be null) += 1. momentum == kCumulativeMomentum:
  /// momentum = 1 / (num_batches_tracked + 1), read where the counter lives (on a GPU: by the kernel, no
  /// host sync).
  void (*update_running)(Tensor& running_mean, Tensor& running_var, Tensor* num_batches_tracked, const Tensor& mean,
                         const Tensor& var, double momentum, double unbias) = nullptr;
};

/// The momentum of PyTorch's momentum=None (cumulative moving average): 1 / (num_batches_tracked + 1).
inline constexpr double kCumulativeMomentum = -1.0;

// ---- device-generic entry points: validate, then dispatch on x's device ----
void batch_norm_stats(const Tensor& x, Tensor& mean, Tensor& var);
void batch_norm_normalize(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight,
                          const Tensor& bias, double eps, Tensor& y);
void batch_norm_backward_reduce(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, double eps,
                                Tensor& sum_dy, Tensor& sum_dy_xhat);
void batch_norm_backward_input(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var,
                               const Tensor& weight, const Tensor& sum_dy, const Tensor& sum_dy_xhat, double eps,
                               bool batch_stats, Tensor& dx);
/// num_batches_tracked may be undefined (not counted), except with kCumulativeMomentum.
void batch_norm_update_running(Tensor& running_mean, Tensor& running_var, Tensor& num_batches_tracked,
                               const Tensor& mean, const Tensor& var, double momentum, double unbias);

}  // namespace ember::kernels
