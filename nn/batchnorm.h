/// @file nn/batchnorm.h @brief nn::BatchNorm1d / BatchNorm2d with PyTorch semantics, plus optional window-merged running statistics.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nn/module.h"

namespace ember::nn {

struct BatchNormOptions {
  int64_t num_features = 0;  ///< C (the constructors taking num_features set it)
  double eps = 1e-5;
  /// running = (1 - momentum) * running + momentum * batch statistic; nullopt: cumulative average
  /// (momentum 1 / num_batches_tracked), as PyTorch's momentum=None.
  std::optional<double> momentum = 0.1;
  bool affine = true;               ///< learnable weight (ones) and bias (zeros)
  bool track_running_stats = true;  ///< buffers running_mean, running_var, num_batches_tracked
  /// Ember's option: in training, merge every micro-batch's per-channel (count, mean, M2) with Chan's
  /// formula and update the running statistics once per accumulation window, in finish_window(), from
  /// the merged mean and unbiased variance (num_batches_tracked += 1 per window). After a window they
  /// equal what one forward of the whole window's batch would have produced: exactly (to rounding) for
  /// a BN layer with no earlier BN layer, whose inputs do not depend on batch statistics; only
  /// approximately for later BN layers, whose inputs were normalized with each micro-batch's own
  /// statistics. Under distributed::DataParallel (built from the model) the window is merged across
  /// ranks too, so it covers the whole effective batch. The output of every forward is unchanged
  /// (normalized with the micro-batch's own statistics, as PyTorch).
  bool window_stats = false;
};

/// Per-channel statistics of the values a BN layer saw in training forwards: how many values per
/// channel (`count`), their mean and M2 (sum of squared deviations from the mean). Empty vectors when
/// count is 0.
struct WindowStats {
  int64_t count = 0;
  std::vector<double> mean, m2;
};

/// Chan et al.'s parallel merge: `into` becomes the statistics of the union of both sets of values,
/// M2 = M2_a + M2_b + (mean_b - mean_a)^2 * n_a * n_b / n. Either side may be empty (count 0); both
/// non-empty ones must have the same number of channels (else an ember::Error).
void merge_window_stats(WindowStats& into, const WindowStats& other);

/// Shared implementation of BatchNorm1d/2d: batch norm over dim 1 of [N, C, *].
/// Parameters: "weight" [C], "bias" [C] (affine). Buffers: "running_mean" [C] (zeros), "running_var"
/// [C] (ones), "num_batches_tracked" (i64, shape []) (track_running_stats). Training normalizes with
/// the batch mean and biased variance and updates the running statistics with the unbiased variance;
/// evaluation normalizes with the running statistics (batch statistics without track_running_stats).
class BatchNormBase : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  /// With window_stats: applies the window's merged statistics to the running statistics (once), then
  /// clears the window. No-op when no training forward ran since the last call.
  void finish_window() override;
  /// Clears the window without touching the running statistics (a skipped update).
  void discard_window() override;
  std::string str() const override;
  /// Running statistics back to (0, 1, 0) and the window cleared; weight/bias back to (1, 0).
  void reset_running_stats();
  void reset_parameters();
  const BatchNormOptions& options() const { return options_; }
  /// Micro-batches merged into the current window (0 when window_stats is off or after finish_window()).
  int64_t window_batches() const { return window_batches_; }
  /// The window accumulator: what finish_window() would apply now (count 0 when nothing is pending).
  const WindowStats& window() const { return window_; }
  /// Replaces the window accumulator (DataParallel puts the merge over all ranks here before
  /// finish_window()). Throws when the channel count or the vectors' sizes do not fit this layer.
  void set_window(WindowStats w);

  Tensor weight, bias;                                    ///< undefined without affine
  Tensor running_mean, running_var, num_batches_tracked;  ///< undefined without track_running_stats

 protected:
  BatchNormBase(const BatchNormOptions& options, std::string name);
  /// Throws an ember::Error naming the expected shape when x does not fit this layer.
  virtual void check_input(const Tensor& x) const = 0;
  const std::string& name() const { return name_; }

 private:
  /// Momentum of the next update (kernels::kCumulativeMomentum for the cumulative average: the kernel
  /// reads num_batches_tracked where it lives).
  double next_momentum() const;
  void merge_into_window(const Tensor& mean, const Tensor& var, int64_t count);
  void clear_window();

  BatchNormOptions options_;
  std::string name_;
  // The window accumulator (host, double): per-channel merged mean and M2 over window_.count values.
  WindowStats window_;
  int64_t window_batches_ = 0;
};

/// Batch norm of [N, C] or [N, C, L] inputs (torch.nn.BatchNorm1d).
class BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(int64_t num_features, BatchNormOptions options = {});
  explicit BatchNorm1d(const BatchNormOptions& options);

 protected:
  void check_input(const Tensor& x) const override;
};

/// Batch norm of [N, C, H, W] inputs (torch.nn.BatchNorm2d).
class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(int64_t num_features, BatchNormOptions options = {});
  explicit BatchNorm2d(const BatchNormOptions& options);

 protected:
  void check_input(const Tensor& x) const override;
};

}  // namespace ember::nn
