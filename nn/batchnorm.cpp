/// @file nn/batchnorm.cpp @brief BatchNorm1d/2d: parameters and buffers under PyTorch's names, per-micro-batch or window-merged running statistics.
#include "nn/batchnorm.h"

#include <utility>

#include "core/grad_mode.h"
#include "kernels/batchnorm.h"
#include "nn/functional.h"

namespace ember::nn {

BatchNormBase::BatchNormBase(const BatchNormOptions& o, std::string name) : options_(o), name_(std::move(name)) {
  EMBER_CHECK(o.num_features > 0, name_, ": num_features must be positive, got ", o.num_features);
  EMBER_CHECK(o.eps > 0.0, name_, ": eps must be positive, got ", o.eps);
  EMBER_CHECK(!o.momentum || (*o.momentum >= 0.0 && *o.momentum <= 1.0), name_, ": momentum must be in [0, 1], got ",
              o.momentum ? *o.momentum : 0.0);
  EMBER_CHECK(!o.window_stats || o.track_running_stats, name_,
              ": window_stats needs track_running_stats (there are no running statistics to update)");
  const int64_t c = o.num_features;
  if (o.affine) {
    weight = register_parameter("weight", ones({c}));
    bias = register_parameter("bias", zeros({c}));
  }
  if (o.track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({c}));
    running_var = register_buffer("running_var", ones({c}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros(Shape{}, TensorOptions{}.set_dtype(DType::i64)));
  }
}

void BatchNormBase::reset_running_stats() {
  clear_window();
  if (!options_.track_running_stats) return;
  NoGradGuard no_grad;
  running_mean.zero_();
  running_var.fill_(1.0);
  num_batches_tracked.zero_();
}

void BatchNormBase::reset_parameters() {
  reset_running_stats();
  if (!options_.affine) return;
  NoGradGuard no_grad;
  weight.fill_(1.0);
  bias.zero_();
}

double BatchNormBase::next_momentum() const {
  if (options_.momentum) return *options_.momentum;
  // Cumulative moving average: the k-th update (k = num_batches_tracked after it) weighs 1 / k, computed
  // by the kernel from the counter where it lives (no host read on a GPU).
  return kernels::kCumulativeMomentum;
}

Tensor BatchNormBase::forward(const Tensor& x) {
  check_input(x);
  functional::BatchNormFuncOptions fo{.weight = weight, .bias = bias, .training = true, .eps = options_.eps};
  if (!options_.track_running_stats) return functional::batch_norm(x, Tensor(), Tensor(), fo);
  if (!is_training()) {
    fo.training = false;
    return functional::batch_norm(x, running_mean, running_var, fo);
  }
  if (options_.window_stats) {
    functional::BatchNormBatchStats stats;
    fo.batch_stats_out = &stats;
    Tensor y = functional::batch_norm(x, Tensor(), Tensor(), fo);
    merge_into_window(stats.mean, stats.var, stats.count);
    return y;
  }
  fo.momentum = next_momentum();
  fo.num_batches_tracked = num_batches_tracked;
  return functional::batch_norm(x, running_mean, running_var, fo);
}

void merge_window_stats(WindowStats& into, const WindowStats& other) {
  EMBER_CHECK(other.count >= 0 && other.mean.size() == other.m2.size(),
              "merge_window_stats: expected count >= 0 and mean and M2 of one size, got count ", other.count, ", ",
              other.mean.size(), " means and ", other.m2.size(), " M2 values");
  if (other.count == 0) return;
  if (into.count == 0) {
    into = other;
    return;
  }
  EMBER_CHECK(into.mean.size() == other.mean.size(), "merge_window_stats: channel counts differ: ", into.mean.size(),
              " and ", other.mean.size());
  // Chan et al.: merge (na, mean_a, M2_a) with (nb, mean_b, M2_b).
  const double na = static_cast<double>(into.count), nb = static_cast<double>(other.count), n = na + nb;
  for (size_t i = 0; i < into.mean.size(); ++i) {
    const double delta = other.mean[i] - into.mean[i];
    into.mean[i] += delta * nb / n;
    into.m2[i] += other.m2[i] + delta * delta * na * nb / n;
  }
  into.count += other.count;
}

void BatchNormBase::merge_into_window(const Tensor& mean, const Tensor& var, int64_t count) {
  WindowStats batch{count, mean.to_vector<double>(), var.to_vector<double>()};
  for (double& m2 : batch.m2) m2 *= static_cast<double>(count);  // biased variance * n
  merge_window_stats(window_, batch);
  ++window_batches_;
}

void BatchNormBase::set_window(WindowStats w) {
  const size_t c = static_cast<size_t>(options_.num_features);
  EMBER_CHECK(w.count >= 0 && (w.count == 0 || (w.mean.size() == c && w.m2.size() == c)), name_, "(",
              options_.num_features, ")::set_window: expected count >= 0 and ", c, " means and M2 values, got count ",
              w.count, ", ", w.mean.size(), " means and ", w.m2.size(), " M2 values");
  window_ = std::move(w);
}

void BatchNormBase::clear_window() {
  window_ = WindowStats{};
  window_batches_ = 0;
}

void BatchNormBase::finish_window() {
  Module::finish_window();
  if (!options_.window_stats || window_.count == 0) return;
  const double n = static_cast<double>(window_.count);
  std::vector<double> unbiased(window_.m2.size());
  for (size_t i = 0; i < unbiased.size(); ++i) unbiased[i] = window_.m2[i] / (n - 1.0);
  const TensorOptions opts{running_mean.dtype(), running_mean.device()};
  const Shape shape{static_cast<int64_t>(unbiased.size())};
  const Tensor mean = from_vector(window_.mean, shape, opts), var = from_vector(unbiased, shape, opts);
  kernels::batch_norm_update_running(running_mean, running_var, num_batches_tracked, mean, var, next_momentum(), 1.0);
  clear_window();
}

void BatchNormBase::discard_window() {
  Module::discard_window();
  clear_window();
}

std::string BatchNormBase::str() const {
  return detail::concat(name_, "(", options_.num_features, ", eps=", options_.eps, ", momentum=",
                        options_.momentum ? std::to_string(*options_.momentum) : std::string("None"),
                        ", affine=", options_.affine ? "true" : "false",
                        ", track_running_stats=", options_.track_running_stats ? "true" : "false",
                        options_.window_stats ? ", window_stats=true" : "", ")");
}

// ------------------------------------------------------------------------------ BatchNorm1d / 2d

namespace {
BatchNormOptions with_features(BatchNormOptions o, int64_t num_features) {
  o.num_features = num_features;
  return o;
}
std::string shape_or_undefined(const Tensor& x) { return x.defined() ? describe(x) : std::string("an undefined tensor"); }
}  // namespace

BatchNorm1d::BatchNorm1d(int64_t num_features, BatchNormOptions o)
    : BatchNormBase(with_features(std::move(o), num_features), "BatchNorm1d") {}
BatchNorm1d::BatchNorm1d(const BatchNormOptions& o) : BatchNormBase(o, "BatchNorm1d") {}

void BatchNorm1d::check_input(const Tensor& x) const {
  const int64_t c = options().num_features;
  EMBER_CHECK(x.defined() && (x.dim() == 2 || x.dim() == 3) && x.size(1) == c, name(), "(", c,
              "): expected input [N, ", c, "] or [N, ", c, ", L] (", c, " channels), got ", shape_or_undefined(x));
}

BatchNorm2d::BatchNorm2d(int64_t num_features, BatchNormOptions o)
    : BatchNormBase(with_features(std::move(o), num_features), "BatchNorm2d") {}
BatchNorm2d::BatchNorm2d(const BatchNormOptions& o) : BatchNormBase(o, "BatchNorm2d") {}

void BatchNorm2d::check_input(const Tensor& x) const {
  const int64_t c = options().num_features;
  EMBER_CHECK(x.defined() && x.dim() == 4 && x.size(1) == c, name(), "(", c, "): expected input [N, ", c,
              ", H, W] (", c, " channels), got ", shape_or_undefined(x));
}

}  // namespace ember::nn
