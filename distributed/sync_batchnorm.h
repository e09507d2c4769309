/// @file distributed/sync_batchnorm.h @brief Synchronized batch normalization: per-channel statistics combined across ranks (count-weighted) in forward, matching all-reduce in backward.
#pragma once
#include <memory>
#include <string>

#include "distributed/process_group.h"
#include "nn/module.h"

namespace ember::distributed {

struct SyncBatchNormOptions {
  double eps = 1e-5;
  double momentum = 0.1;  ///< running = (1 - momentum) * running + momentum * batch statistic
};

/// Batch norm over the channel dim 1 of x [N, C] or [N, C, *], with the batch spread over every rank
/// of `group` (torch.nn.SyncBatchNorm). Training (`training` = true):
///  - forward: each rank's per-channel (count, mean, M2) are all-gathered (one all-reduce of a
///    [world, 1 + 2C] table) and merged with Chan's formula, so ranks with different micro-batch
///    sizes are weighted by their counts; y = (x - mean) / sqrt(var + eps) * weight + bias with the
///    biased variance of the global batch; running_mean/running_var (when defined) move toward the
///    global mean and the unbiased global variance, num_batches_tracked (when defined) += 1.
///  - backward: one all-reduce of the per-channel sums of dy and dy * xhat gives dx exactly as batch
///    norm over the global batch; dweight and dbias are this rank's sums (DataParallel then sums them
///    across ranks, which gives the global batch's).
/// Every rank must call it (forward and backward) in the same order. Evaluation (`training` = false)
/// normalizes with the running statistics and communicates nothing.
/// weight/bias: [C] (both defined or both undefined); running stats [C] on x's device.
Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                       Tensor running_var, Tensor num_batches_tracked, bool training, ProcessGroup& group,
                       SyncBatchNormOptions options = {});

/// The module form (torch.nn.SyncBatchNorm) for `--norm sync`: a drop-in for BatchNorm1d/2d with the
/// same parameter and buffer names (weight, bias, running_mean, running_var, num_batches_tracked), so
/// checkpoints move between the two. Header-only, like a layer a user writes against nn::Module.
class SyncBatchNorm : public nn::Module {
 public:
  SyncBatchNorm(int64_t num_features, std::shared_ptr<ProcessGroup> group, SyncBatchNormOptions options = {})
      : group_(std::move(group)), options_(options), num_features_(num_features) {
    EMBER_CHECK(num_features >= 1, "SyncBatchNorm: num_features must be >= 1, got ", num_features);
    EMBER_CHECK(group_ != nullptr, "SyncBatchNorm: the process group is null");
    weight_ = register_parameter("weight", ones(Shape{num_features}));
    bias_ = register_parameter("bias", zeros(Shape{num_features}));
    running_mean_ = register_buffer("running_mean", zeros(Shape{num_features}));
    running_var_ = register_buffer("running_var", ones(Shape{num_features}));
    num_batches_tracked_ = register_buffer("num_batches_tracked", zeros(Shape{}, TensorOptions{}.set_dtype(DType::i64)));
  }

  Tensor forward(const Tensor& x) override {
    return sync_batch_norm(x, weight_, bias_, running_mean_, running_var_, num_batches_tracked_, is_training(), *group_,
                           options_);
  }
  std::string str() const override {
    return "SyncBatchNorm(" + std::to_string(num_features_) + ", world=" + std::to_string(group_->size()) + ")";
  }
  ProcessGroup& group() const { return *group_; }

 private:
  std::shared_ptr<ProcessGroup> group_;
  SyncBatchNormOptions options_;
  int64_t num_features_;
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
};

}  // namespace ember::distributed
