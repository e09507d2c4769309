/// @file kernels/loss.cpp @brief Device-generic cross-entropy entry points: shape/dtype/device checks, then a named error for a target outside [0, C) that is not ignore_index; the count of non-ignored targets.
#include "kernels/loss.h"

#include "kernels/dispatch.h"
#include "kernels/transfer.h"

namespace ember::kernels {
namespace {

void check_logits_targets(const char* op, const Tensor& logits, const Tensor& targets) {
  check_same_device(op, logits, targets);
  EMBER_CHECK(is_floating(logits.dtype()) && logits.dim() == 2 && logits.is_contiguous(), op,
              ": expected contiguous floating logits [N, C], got ", describe(logits));
  EMBER_CHECK(targets.dtype() == DType::i64 && targets.dim() == 1 && targets.size(0) == logits.size(0) &&
                  targets.is_contiguous(),
              op, ": expected contiguous i64 targets [", logits.size(0), "], got ", describe(targets));
}

void check_row_vector(const char* op, const char* what, const Tensor& logits, const Tensor& v) {
  check_same_device(op, logits, v);
  check_same_dtype(op, logits, v);
  EMBER_CHECK(v.dim() == 1 && v.size(0) == logits.size(0) && v.is_contiguous(), op, ": expected ", what,
              " as a contiguous [", logits.size(0), "], got ", describe(v));
}

void check_smoothing(const char* op, const CrossEntropyParams& p) {
  EMBER_CHECK(p.label_smoothing >= 0.0 && p.label_smoothing <= 1.0, op, ": label_smoothing must be in [0, 1], got ",
              p.label_smoothing);
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse,
                           const CrossEntropyParams& p) {
  check_logits_targets("cross_entropy", logits, targets);
  check_smoothing("cross_entropy", p);
  check_row_vector("cross_entropy", "losses", logits, losses);
  check_row_vector("cross_entropy", "lse", logits, lse);
  EMBER_CHECK(logits.size(1) >= 1, "cross_entropy: logits have no classes: ", describe(logits));
  if (logits.numel() == 0) return;
  const int64_t bad = require(table_for<LossKernels>(logits.device().type).cross_entropy_forward, "cross_entropy",
                              logits.device())(logits, targets, p, losses, lse);
  if (bad != 0) raise_bad_targets(targets, logits.size(1), p.ignore_index, "");
}

void count_not_ignored(const Tensor& targets, int64_t ignore_index, Tensor& count) {
  check_same_device("count_not_ignored", targets, count);
  EMBER_CHECK(targets.dtype() == DType::i64 && targets.is_contiguous(),
              "count_not_ignored: expected contiguous i64 targets, got ", describe(targets));
  EMBER_CHECK(count.dtype() == DType::i64 && count.numel() == 1 && count.is_contiguous(),
              "count_not_ignored: expected a 1-element i64 count, got ", describe(count));
  require(table_for<LossKernels>(targets.device().type).count_not_ignored, "count_not_ignored",
          targets.device())(targets, ignore_index, count);
}

void raise_bad_targets(const Tensor& targets, int64_t classes, int64_t ignore_index, const std::string& where) {
  // Cold path: name the first offending target and count them all (on the host).
  const Tensor t = targets.device().is_cpu() ? targets : transfer(targets, Device::cpu());
  const int64_t* tp = static_cast<const int64_t*>(t.data_ptr());
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < t.numel(); ++i)
    if (tp[i] != ignore_index && (tp[i] < 0 || tp[i] >= classes)) {
      if (bad++ == 0) first = i;
    }
  EMBER_CHECK(bad > 0, "cross_entropy: a device check reported invalid targets but none is out of [0, ", classes,
              ")", where);
  EMBER_FAIL("cross_entropy: target ", tp[first], " at position ", first, " is out of range for C = ", classes,
             " classes and not ignore_index = ", ignore_index,
             " (", bad, " invalid targets in all)", where);
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& grad_losses,
                            Tensor& grad_logits, const CrossEntropyParams& p) {
  check_logits_targets("cross_entropy_backward", logits, targets);
  check_smoothing("cross_entropy_backward", p);
  check_row_vector("cross_entropy_backward", "lse", logits, lse);
  check_row_vector("cross_entropy_backward", "grad_losses", logits, grad_losses);
  check_same_device("cross_entropy_backward", logits, grad_logits);
  check_same_dtype("cross_entropy_backward", logits, grad_logits);
  EMBER_CHECK(grad_logits.shape() == logits.shape() && grad_logits.is_contiguous(),
              "cross_entropy_backward: expected grad_logits contiguous ", shape_str(logits.shape()), ", got ",
              describe(grad_logits));
  if (logits.numel() == 0) return;
  require(table_for<LossKernels>(logits.device().type).cross_entropy_backward, "cross_entropy_backward",
          logits.device())(logits, targets, lse, grad_losses, p, grad_logits);
}

}  // namespace ember::kernels
