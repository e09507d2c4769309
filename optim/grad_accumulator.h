/// @file optim/grad_accumulator.h @brief GradAccumulator: the micro-batch data path (seed backward with the count, exact 1/total scale, clip, skip, step, schedule) and the CommHook for data parallelism.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "nn/module.h"
#include "optim/lr_scheduler.h"
#include "optim/optimizer.h"

namespace ember::optim {

/// Fault injection (docs/reliability.md): after the backward of micro-step `micro_step`
/// (counted as micro_steps() counts, 1 = the run's first backward()), one gradient element holds `value`.
struct NonFiniteInjection {
  int64_t micro_step = 0;
  double value = 0.0;  ///< NaN, +Inf or -Inf
};

struct GradAccumulatorOptions {
  int64_t accum_steps = 1;       ///< micro-batches per optimizer step (N >= 1)
  double clip_norm = 0.0;        ///< clip the global gradient L2 norm to this (0 = off)
  bool skip_non_finite = true;   ///< a NaN/Inf gradient skips the update (weights and state untouched)
  /// What happens to a parameter that received no gradient in a window (no micro-batch's backward reached
  /// it, on any rank). true (the default, as PyTorch's zero_grad(set_to_none=True)): it is left out of
  /// that window's optimizer step, as PyTorch skips `grad is None`: no weight decay, no momentum, no AdamW
  /// step count. false (PyTorch's set_to_none=False): it steps with a zero gradient, so weight decay and
  /// momentum still move it. Either way its .grad buffer stays allocated (Ember zeroes in place).
  bool set_to_none = true;
  /// Fault injection: non-finite values to put into the gradients (the reliability tests; empty in
  /// training).
  std::vector<NonFiniteInjection> inject_non_finite = {};
};


/// Communication at the window boundary; implemented by distributed::DataParallel.
class CommHook {
 public:
  virtual ~CommHook() = default;
  /// Called before every micro-batch backward; `last_in_window` is true for the N-th micro-batch of a
  /// full window (a window ended early by flush() learns it only in reduce()), so DP can arm its
  /// bucket all-reduce to overlap the last backward only. `window_count` is this rank's count of loss
  /// terms (samples, tokens) of the window including this micro-batch (-1: not known yet; reduce()
  /// brings it), so the count can travel with the first bucket to start.
  virtual void before_backward(bool last_in_window, int64_t window_count = -1) {
    (void)last_in_window, (void)window_count;
  }
  /// At every window end, before any scaling: all-reduce (sum) the gradient SUMS and the local loss-term
  /// count; returns the global count. Must finish all communication still outstanding.
  virtual int64_t reduce(std::span<Tensor> grads, int64_t local_count) = 0;
  /// At a window end after reduce(), when the accumulator runs with set_to_none: `touched[i]` is 1 when
  /// this rank's backward reached the accumulator's parameter i during the window; the hook makes it the
  /// OR over all ranks (a parameter that got a gradient anywhere steps everywhere), so every rank skips
  /// the same parameters.
  virtual void reduce_touched(std::span<uint8_t> touched) = 0;
  /// flush(): returns the largest number of micro-batches any rank has pending (this rank's is
  /// `window_micro`), so that either every rank ends the short window or none does. DataParallel: one
  /// small all-reduce.
  virtual int64_t agree_pending(int64_t window_micro) { return window_micro; }
  /// At every window end, after the update (`applied`) or its skip: closes the window on the model.
  /// The default calls model.finish_window() when applied, else model.discard_window(); DataParallel
  /// also merges window-merged BatchNorm statistics across ranks and rebroadcasts buffers from rank 0.
  virtual void close_window(nn::Module& model, bool applied) {
    if (applied) {
      model.finish_window();
    } else {
      model.discard_window();
    }
  }
};

/// Drives the accumulation data path (docs/accumulation.md). For each micro-batch: out = model(x); loss = mean criterion;
/// acc.backward(loss, count), or loss = summed criterion; acc.backward_sum(loss, count). The count is the
/// number of LOSS TERMS of the micro-batch: its samples for classification, its non-ignored target tokens
/// (count_not_ignored) for a language model. backward seeds autograd with `count` (backward_sum with 1),
/// so the parameters' .grad hold the SUM of per-term gradients over the window; the graph and
/// activations are freed when it returns. At the window boundary (the accum_steps-th backward, or
/// flush() for a short final window):
///   hook->reduce (sums + count) -> scale grads by 1/total (one fused pass: global norm + non-finite)
///   -> skip if non-finite -> clip by global norm -> optimizer step -> schedule step
///   -> model.finish_window() (model.discard_window() when skipped; through hook->close_window) -> zero grads.
/// So every loss term of the window weighs 1/total, however the terms are spread over micro-batches (and
/// ranks): the window's gradient is the large batch's mean gradient (docs/transformer.md, "Token-exact
/// accumulation").
/// With clip_norm == 0 and skip_non_finite == false the scale is folded into the optimizer kernel
/// instead (Optimizer::step_gated), so the window end is a single pass over the weights.
/// Host synchronizations on a GPU: none per micro-batch (the loss is summed on the device); one per
/// window end (the skip and clip decisions are made on the device, by the optimizer kernels reading
/// the step status; the host then reads loss sum, norm and flag in one copy).
class GradAccumulator {
 public:
  /// Throws on accum_steps < 1, a negative or non-finite clip_norm, a model without parameters,
  /// parameters on several devices, or an optimizer parameter that is not one of the model's.
  GradAccumulator(nn::Module& model, Optimizer& opt, GradAccumulatorOptions o = {}, LRScheduler* sched = nullptr);
  ~GradAccumulator();
  GradAccumulator(const GradAccumulator&) = delete;  // its gradient hooks point at this object
  GradAccumulator& operator=(const GradAccumulator&) = delete;

  /// `loss` is the MEAN over a micro-batch of `count` loss terms (count >= 1; samples, or non-ignored
  /// tokens: cross_entropy's Reduction::Mean divides by count_not_ignored(targets)). Returns true when
  /// this call ended a window (and so ran, or skipped, an optimizer step).
  bool backward(const Tensor& loss, int64_t count);
  /// The same for `loss_sum`, the SUM over the micro-batch's `count` loss terms (e.g. cross_entropy with
  /// Reduction::Sum and ignore_index, count = count_not_ignored(targets)); autograd is seeded with 1.
  /// count >= 0: a micro-batch whose targets are all ignored (padding) adds nothing to the gradient or
  /// the count but still counts as a micro-step (its backward still runs and frees its graph). The
  /// window's global count must still be >= 1 at its end.
  bool backward_sum(const Tensor& loss_sum, int64_t count);
  /// A micro-step in which this rank has no samples (under data parallelism, a late rank's share of the
  /// short last global micro-step of an epoch): counts toward the window like backward() with no
  /// gradient, so every rank ends the window at the same micro-step and joins the same all-reduce.
  /// Returns true when it ended a window. The window's global count must still be >= 1.
  bool empty_micro_batch();
  /// Ends a short window (the data ran out before accum_steps micro-batches); returns false and does
  /// nothing when no micro-batch is pending. With a CommHook the ranks agree first
  /// (CommHook::agree_pending): a rank with nothing pending still ends the window, with no samples,
  /// when another rank has some, so every rank must call flush() at the same point.
  bool flush();
  void set_comm_hook(CommHook* h) { hook_ = h; }

  int64_t micro_steps() const { return micro_steps_; }          ///< backward() and empty_micro_batch() calls
  int64_t optimizer_steps() const { return optimizer_steps_; }  ///< windows that applied an update
  int64_t skipped_steps() const { return skipped_steps_; }      ///< windows skipped (non-finite grads)
  double last_grad_norm() const { return last_grad_norm_; }     ///< global norm of the last window's mean grads (before clipping)
  /// Sum over the last window's micro-batches of their loss sums (mean * count, or backward_sum's sum;
  /// this rank's): its mean loss times its loss terms.
  double last_loss_sum() const { return last_loss_sum_; }
  bool last_step_skipped() const { return last_skipped_; }
  double last_lr() const { return last_lr_; }                   ///< lr (group 0) the last window's update used
  int64_t window_count() const { return window_count_; }        ///< loss terms (samples, tokens) in the pending window
  int64_t window_micro_steps() const { return window_micro_; }  ///< micro-batches in the pending window
  /// True when the window end folds the 1/count scale into the optimizer (single pass).
  bool fused_window_end() const { return options_.clip_norm == 0.0 && !options_.skip_non_finite; }
  const GradAccumulatorOptions& options() const { return options_; }
  /// Restores the counters of a resumed run (no window may be pending).
  void restore_counters(int64_t micro_steps, int64_t optimizer_steps, int64_t skipped_steps);

 private:
  /// backward() and backward_sum(): checks `loss`, seeds its backward with `seed` (count for a mean, 1
  /// for a sum), adds loss * seed to the device-resident loss sum and counts the micro-step. `who` and
  /// `what` name the caller and the expected loss in errors.
  bool backward_seeded(const Tensor& loss, int64_t count, double seed, const char* who, const char* what);
  void end_window();
  void zero_grads();
  /// set_to_none: the parameters no backward reached in this window (OR over ranks through the hook),
  /// whose .grad is taken away for the step; put back by restore_grads.
  std::vector<std::pair<Tensor, Tensor>> hide_untouched_grads();
  static void restore_grads(const std::vector<std::pair<Tensor, Tensor>>& hidden);
  /// Names the micro-step about to run (micro_steps() + 1) as the context of device-side checks
  /// (kernels/device_checks.h), so a bad target found on a GPU is reported with its micro-step.
  void label_micro_step() const;
  /// The device-resident step status (kernels/accumulate.h): the window's loss sum, then its norm and flag.
  Tensor& status();
  /// The value to inject at micro-step `step` (1-based), or 0 for none.
  double injection_at(int64_t step) const;
  void inject(double value);

  nn::Module& model_;
  Optimizer& opt_;
  GradAccumulatorOptions options_;
  LRScheduler* sched_;
  CommHook* hook_ = nullptr;
  std::vector<Tensor> params_;
  std::vector<uint64_t> hooks_;   ///< post-accumulate-grad hooks marking touched_ (set_to_none)
  std::vector<uint8_t> touched_;  ///< per parameter: a backward of the pending window reached it
  int64_t micro_steps_ = 0, optimizer_steps_ = 0, skipped_steps_ = 0;
  int64_t window_count_ = 0, window_micro_ = 0;
  double last_grad_norm_ = 0.0, last_lr_ = 0.0, last_loss_sum_ = 0.0;
  Tensor status_;
  bool last_skipped_ = false;
};

}  // namespace ember::optim
