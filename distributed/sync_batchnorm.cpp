/// @file distributed/sync_batchnorm.cpp @brief sync_batch_norm: Chan-merged global statistics in forward (one all-reduce), the global dx reductions in backward (one all-reduce).
#include "distributed/sync_batchnorm.h"

#include <cmath>
#include <vector>

#include "ops/autograd/node.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

namespace ember::distributed {

namespace {

// Shape [1, C, 1, ...] of the per-channel statistics, broadcastable against x.
Shape stat_shape(const Tensor& x) {
  Shape s(static_cast<size_t>(x.dim()), 1);
  s[1] = x.size(1);
  return s;
}

// Reduction dims: every dim but the channel dim 1.
std::vector<int64_t> reduce_dims(const Tensor& x) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

Tensor per_channel(const std::vector<double>& v, const Tensor& like, const Shape& shape) {
  return from_vector(v, shape, TensorOptions{like.dtype(), like.device()});
}

class SyncBatchNormBackward final : public Node {
 public:
  SyncBatchNormBackward(Tensor xhat, Tensor invstd, Tensor weight, ProcessGroup& group, int64_t total, bool affine)
      : xhat_(std::move(xhat)), invstd_(std::move(invstd)), weight_(std::move(weight)), group_(group), total_(total),
        affine_(affine) {}
  std::string name() const override { return "SyncBatchNormBackward"; }

  std::vector<Tensor> apply(const Tensor& dy) override {
    const std::vector<int64_t> dims = reduce_dims(xhat_);
    const Shape ss = stat_shape(xhat_);
    const int64_t c = xhat_.size(1);
    Tensor sum_dy = sum(dy, dims, true);
    Tensor sum_dy_xhat = sum(dy * xhat_, dims, true);
    // One all-reduce for both per-channel sums.
    Tensor packed = empty(Shape{2 * c}, TensorOptions{dy.dtype(), dy.device()});
    packed.slice(0, 0, c).copy_(sum_dy.reshape(Shape{c}));
    packed.slice(0, c, 2 * c).copy_(sum_dy_xhat.reshape(Shape{c}));
    group_.all_reduce(packed);
    const double inv_n = 1.0 / static_cast<double>(total_);
    Tensor mean_dy = packed.slice(0, 0, c).reshape(ss) * inv_n;
    Tensor mean_dy_xhat = packed.slice(0, c, 2 * c).reshape(ss) * inv_n;
    Tensor scale = affine_ ? invstd_ * weight_.reshape(ss) : invstd_;
    Tensor dx = (dy - mean_dy - xhat_ * mean_dy_xhat) * scale;
    if (!affine_) return {dx, Tensor(), Tensor()};
    // This rank's share of dweight/dbias; DataParallel sums them over the ranks.
    return {dx, sum_dy_xhat.reshape(Shape{c}), sum_dy.reshape(Shape{c})};
  }

  void release_saved() override {
    xhat_ = Tensor();
    invstd_ = Tensor();
    weight_ = Tensor();
  }

 private:
  Tensor xhat_, invstd_, weight_;
  ProcessGroup& group_;
  int64_t total_;
  bool affine_;
};

void check_args(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                const Tensor& running_var, bool training, const SyncBatchNormOptions& o) {
  EMBER_CHECK(x.defined() && x.dim() >= 2, "sync_batch_norm: expected input [N, C] or [N, C, *], got ",
              x.defined() ? describe(x) : std::string("an undefined tensor"));
  EMBER_CHECK(is_floating(x.dtype()), "sync_batch_norm: the input must be floating, got ", describe(x));
  EMBER_CHECK(o.eps > 0 && std::isfinite(o.eps), "sync_batch_norm: eps must be positive, got ", o.eps);
  EMBER_CHECK(o.momentum >= 0 && o.momentum <= 1, "sync_batch_norm: momentum must be in [0, 1], got ", o.momentum);
  const int64_t c = x.size(1);
  EMBER_CHECK(weight.defined() == bias.defined(), "sync_batch_norm: weight and bias must both be given or both be "
              "undefined");
  for (const Tensor* t : {&weight, &bias, &running_mean, &running_var}) {
    if (!t->defined()) continue;
    EMBER_CHECK(t->shape() == Shape{c} && t->dtype() == x.dtype() && t->device() == x.device(),
                "sync_batch_norm: per-channel tensors must be ", dtype_name(x.dtype()), "[", c, "] on ", x.device(),
                " for input ", describe(x), ", got ", describe(*t));
  }
  EMBER_CHECK(running_mean.defined() == running_var.defined(),
              "sync_batch_norm: running_mean and running_var must both be given or both be undefined");
  EMBER_CHECK(training || running_mean.defined(), "sync_batch_norm: evaluation needs running statistics");
}

}  // namespace

Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                       Tensor running_var, Tensor num_batches_tracked, bool training, ProcessGroup& group,
                       SyncBatchNormOptions options) {
  check_args(x, weight, bias, running_mean, running_var, training, options);
  const Shape ss = stat_shape(x);
  const bool affine = weight.defined();
  if (!training) {
    Tensor y = (x - running_mean.detach().reshape(ss)) * pow(running_var.detach().reshape(ss) + options.eps, -0.5);
    return affine ? y * weight.reshape(ss) + bias.reshape(ss) : y;
  }

  const int64_t c = x.size(1);
  const int64_t n_local = c > 0 ? x.numel() / c : 0;
  const int world = group.size();
  const std::vector<int64_t> dims = reduce_dims(x);
  Tensor xhat, invstd, y;
  std::vector<double> g_mean(static_cast<size_t>(c), 0.0), g_m2(static_cast<size_t>(c), 0.0);
  int64_t total = 0;
  {
    NoGradGuard no_grad;
    Tensor xd = x.detach();
    // This rank's (count, mean, M2) in its row of a [world, 1 + 2C] table; the sum all-reduce is an all-gather.
    std::vector<double> rows(static_cast<size_t>(world) * static_cast<size_t>(1 + 2 * c), 0.0);
    const size_t row = static_cast<size_t>(group.rank()) * static_cast<size_t>(1 + 2 * c);
    rows[row] = static_cast<double>(n_local);
    if (n_local > 0) {
      Tensor lm = ember::mean(xd, dims, true);
      const std::vector<double> lmv = lm.to_vector<double>();
      const std::vector<double> lm2 = sum(pow(xd - lm, 2.0), dims, false).to_vector<double>();
      for (int64_t k = 0; k < c; ++k) {
        rows[row + 1 + static_cast<size_t>(k)] = lmv[static_cast<size_t>(k)];
        rows[row + 1 + static_cast<size_t>(c + k)] = lm2[static_cast<size_t>(k)];
      }
    }
    Tensor table = from_vector(rows, Shape{world, 1 + 2 * c}, TensorOptions{x.dtype(), x.device()});
    group.all_reduce(table);
    const std::vector<double> all = table.to_vector<double>();
    // Chan et al.'s pairwise merge, rank by rank: exact for any split of the batch.
    for (int r = 0; r < world; ++r) {
      const size_t o = static_cast<size_t>(r) * static_cast<size_t>(1 + 2 * c);
      const auto nr = static_cast<int64_t>(std::llround(all[o]));
      if (nr == 0) continue;
      const double nn = static_cast<double>(total + nr);
      for (int64_t k = 0; k < c; ++k) {
        const size_t kk = static_cast<size_t>(k);
        const double delta = all[o + 1 + kk] - g_mean[kk];
        g_mean[kk] += delta * static_cast<double>(nr) / nn;
        g_m2[kk] += all[o + 1 + static_cast<size_t>(c) + kk] + delta * delta * static_cast<double>(total) *
                                                                  static_cast<double>(nr) / nn;
      }
      total += nr;
    }
    EMBER_CHECK(total > 1, "sync_batch_norm: expected more than 1 value per channel across all ranks in training, "
                "got ", total, " (input on rank ", group.rank(), ": ", describe(x), ")");
    std::vector<double> inv(static_cast<size_t>(c));
    for (size_t k = 0; k < inv.size(); ++k) inv[k] = 1.0 / std::sqrt(g_m2[k] / static_cast<double>(total) + options.eps);
    invstd = per_channel(inv, x, ss);
    xhat = (xd - per_channel(g_mean, x, ss)) * invstd;
    y = affine ? xhat * weight.detach().reshape(ss) + bias.detach().reshape(ss) : xhat.clone();

    if (running_mean.defined()) {
      std::vector<double> unbiased(static_cast<size_t>(c));
      for (size_t k = 0; k < unbiased.size(); ++k) unbiased[k] = g_m2[k] / static_cast<double>(total - 1);
      const double m = options.momentum;
      Tensor rm = running_mean.detach(), rv = running_var.detach();
      rm.copy_(rm * (1.0 - m) + per_channel(g_mean, x, Shape{c}) * m);
      rv.copy_(rv * (1.0 - m) + per_channel(unbiased, x, Shape{c}) * m);
    }
    if (num_batches_tracked.defined()) {
      Tensor nbt = num_batches_tracked.detach();
      nbt.fill_(nbt.item() + 1.0);
    }
  }
  if (any_requires_grad({&x, &weight, &bias})) {
    auto node = std::make_shared<SyncBatchNormBackward>(xhat, invstd, affine ? weight.detach() : Tensor(), group,
                                                        total, affine);
    record(node, {&x, &weight, &bias}, y);
  }
  return y;
}

}  // namespace ember::distributed
