/// @file kernels/batchnorm.cpp @brief Device-generic batch-norm entry points: shape/device/dtype validation and dispatch.
#include "kernels/batchnorm.h"

#include <initializer_list>

#include "kernels/dispatch.h"

namespace ember::kernels {

BatchNormShape batch_norm_shape(const Tensor& x) {
  EMBER_CHECK(x.dim() >= 2, "batch_norm: expected an input [N, C] or [N, C, *], got ", describe(x));
  BatchNormShape sh;
  sh.n = x.size(0);
  sh.c = x.size(1);
  sh.s = 1;
  for (int64_t d = 2; d < x.dim(); ++d) sh.s *= x.size(d);
  return sh;
}

namespace {

BatchNormKernels& table(const Tensor& x) { return table_for<BatchNormKernels>(x.device().type); }

/// x-shaped operands: contiguous, same shape, device and floating dtype as x.
void check_like_x(const char* op, const Tensor& x, std::initializer_list<const Tensor*> ts) {
  EMBER_CHECK(is_floating(x.dtype()) && x.is_contiguous(), op, ": expected a contiguous floating input, got ",
              describe(x));
  for (const Tensor* t : ts) {
    check_same_device(op, x, *t);
    check_same_dtype(op, x, *t);
    EMBER_CHECK(t->is_contiguous() && t->shape() == x.shape(), op, ": expected a contiguous tensor shaped like ",
                describe(x), ", got ", describe(*t));
  }
}

/// Per-channel operands: contiguous [C] of x's device and dtype; undefined allowed when `optional`.
void check_channel(const char* op, const Tensor& x, const Tensor& t, const char* name, bool optional = false) {
  if (optional && !t.defined()) return;
  EMBER_CHECK(t.defined(), op, ": ", name, " is undefined");
  const int64_t c = x.size(1);
  EMBER_CHECK(t.device() == x.device() && t.dtype() == x.dtype() && t.is_contiguous() && t.shape() == Shape{c}, op,
              ": ", name, " must be a contiguous ", dtype_name(x.dtype()), "[", c, "] on ", x.device(), " for input ",
              describe(x), ", got ", describe(t));
}

}  // namespace

void batch_norm_stats(const Tensor& x, Tensor& mean, Tensor& var) {
  const BatchNormShape sh = batch_norm_shape(x);
  check_like_x("batch_norm_stats", x, {});
  check_channel("batch_norm_stats", x, mean, "mean");
  check_channel("batch_norm_stats", x, var, "var");
  EMBER_CHECK(sh.per_channel() > 0, "batch_norm_stats: no values per channel in ", describe(x));
  require(table(x).stats, "batch_norm_stats", x.device())(x, sh, mean, var);
}

void batch_norm_normalize(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight,
                          const Tensor& bias, double eps, Tensor& y) {
  const BatchNormShape sh = batch_norm_shape(x);
  check_like_x("batch_norm", x, {&y});
  check_channel("batch_norm", x, mean, "mean");
  check_channel("batch_norm", x, var, "var");
  check_channel("batch_norm", x, weight, "weight", true);
  check_channel("batch_norm", x, bias, "bias", true);
  if (x.numel() == 0) return;
  require(table(x).normalize, "batch_norm", x.device())(x, mean, var, weight, bias, eps, sh, y);
}

void batch_norm_backward_reduce(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, double eps,
                                Tensor& sum_dy, Tensor& sum_dy_xhat) {
  const BatchNormShape sh = batch_norm_shape(x);
  check_like_x("batch_norm_backward", x, {&dy});
  check_channel("batch_norm_backward", x, mean, "mean");
  check_channel("batch_norm_backward", x, var, "var");
  check_channel("batch_norm_backward", x, sum_dy, "sum_dy");
  check_channel("batch_norm_backward", x, sum_dy_xhat, "sum_dy_xhat");
  require(table(x).backward_reduce, "batch_norm_backward", x.device())(dy, x, mean, var, eps, sh, sum_dy, sum_dy_xhat);
}

void batch_norm_backward_input(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var,
                               const Tensor& weight, const Tensor& sum_dy, const Tensor& sum_dy_xhat, double eps,
                               bool batch_stats, Tensor& dx) {
  const BatchNormShape sh = batch_norm_shape(x);
  check_like_x("batch_norm_backward", x, {&dy, &dx});
  check_channel("batch_norm_backward", x, mean, "mean");
  check_channel("batch_norm_backward", x, var, "var");
  check_channel("batch_norm_backward", x, weight, "weight", true);
  check_channel("batch_norm_backward", x, sum_dy, "sum_dy", !batch_stats);
  check_channel("batch_norm_backward", x, sum_dy_xhat, "sum_dy_xhat", !batch_stats);
  if (x.numel() == 0) return;
  require(table(x).backward_input, "batch_norm_backward", x.device())(dy, x, mean, var, weight, sum_dy, sum_dy_xhat,
                                                                      eps, batch_stats, sh, dx);
}

void batch_norm_update_running(Tensor& running_mean, Tensor& running_var, Tensor& num_batches_tracked,
                               const Tensor& mean, const Tensor& var, double momentum, double unbias) {
  const char* op = "batch_norm running statistics";
  EMBER_CHECK(mean.dim() == 1 && is_floating(mean.dtype()), op, ": expected a floating [C] batch mean, got ",
              describe(mean));
  for (const Tensor* t : {static_cast<const Tensor*>(&running_mean), static_cast<const Tensor*>(&running_var), &var}) {
    EMBER_CHECK(t->defined() && t->shape() == mean.shape() && t->dtype() == mean.dtype() &&
                    t->device() == mean.device() && t->is_contiguous(),
                op, ": expected a contiguous ", describe(mean), ", got ",
                t->defined() ? describe(*t) : std::string("an undefined tensor"));
  }
  if (num_batches_tracked.defined())
    EMBER_CHECK(num_batches_tracked.dtype() == DType::i64 && num_batches_tracked.numel() == 1 &&
                    num_batches_tracked.device() == mean.device(),
                op, ": num_batches_tracked must be a one-element i64 tensor on ", mean.device(), ", got ",
                describe(num_batches_tracked));
  EMBER_CHECK((momentum >= 0.0 && momentum <= 1.0) || momentum == kCumulativeMomentum, op,
              ": momentum must be in [0, 1] (or kCumulativeMomentum), got ", momentum);
  EMBER_CHECK(momentum != kCumulativeMomentum || num_batches_tracked.defined(), op,
              ": the cumulative average (momentum None) needs num_batches_tracked");
  require(table_for<BatchNormKernels>(mean.device().type).update_running, "batch_norm_update_running", mean.device())(
      running_mean, running_var, num_batches_tracked.defined() ? &num_batches_tracked : nullptr, mean, var, momentum,
      unbias);
}

}  // namespace ember::kernels
