/// @file ops/functional_conv.h @brief Differentiable conv2d (im2col + GEMM, weight/bias gradients written straight into .grad), max_pool2d and batch_norm.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ember {

/// y = conv2d(x, weight) + bias for x [N, Cin, H, W], weight [Cout, Cin, kh, kw], bias [Cout] or undefined;
/// y is [N, Cout, OH, OW] with OH = (H + 2 * padding - kh) / stride + 1 (groups 1, dilation 1).
/// Forward: im2col of the batch into [N, Cin*kh*kw, OH*OW], then one GEMM over the batch (the bias is
/// broadcast into y first and the GEMM adds with beta = 1). Backward: dx = col2im(W^T @ dy); when the
/// weight (bias) is a leaf, dW = sum_n dy_n @ col_n^T (db = sum_n dy_n @ 1) are accumulated by the GEMMs
/// themselves into its existing .grad with beta = 1 (no separate accumulate pass; the .grad buffer is
/// allocated once, on the first backward); otherwise they are returned to the engine as usual.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
              int64_t padding = 0);

/// Max pooling over the last two dims of x [N, C, H, W] (or [C, H, W]) with a square kernel; stride 0
/// means stride = kernel_size (PyTorch's default); padding in [0, kernel_size / 2] pads with -inf.
/// The gradient flows to the (first) maximum of each window.
Tensor max_pool2d(const Tensor& x, int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);

/// The batch statistics of one training forward (biased variance), for callers that merge them.
struct BatchNormBatchStats {
  Tensor mean{};      ///< [C]
  Tensor var{};       ///< [C], biased (M2 / count)
  int64_t count = 0;  ///< values per channel (N * S)
};

/// Options of batch_norm, as torch::nn::functional::BatchNormFuncOptions (plus Ember's extras).
struct BatchNormFuncOptions {
  Tensor weight{};  ///< [C] or undefined (scale 1)
  Tensor bias{};    ///< [C] or undefined (shift 0)
  bool training = false;
  double momentum = 0.1;
  double eps = 1e-5;
  /// Incremented (on its device) whenever the running statistics are updated; may be undefined.
  Tensor num_batches_tracked{};
  /// When non-null and the batch statistics were used, receives them (detached).
  BatchNormBatchStats* batch_stats_out = nullptr;
};

/// Batch normalization over dim 1 of x [N, C] or [N, C, *]. With training = true (or undefined running
/// statistics) it normalizes with the batch mean and biased variance, and, when running_mean/running_var
/// are defined and training, moves them by running = (1 - momentum) * running + momentum * stat with the
/// unbiased variance (n / (n - 1)). Otherwise it normalizes with running_mean/running_var. Differentiable
/// in x, weight and bias.
Tensor batch_norm(const Tensor& x, Tensor running_mean, Tensor running_var, const BatchNormFuncOptions& options = {});

}  // namespace ember
