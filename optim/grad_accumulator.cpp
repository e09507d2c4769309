/// @file optim/grad_accumulator.cpp @brief GradAccumulator: configuration checks, count-seeded backward, and the window-end pipeline.
#include "optim/grad_accumulator.h"

#include <cmath>
#include <unordered_set>

#include "core/grad_mode.h"
#include "kernels/accumulate.h"
#include "kernels/device_checks.h"
#include "ops/autograd/node.h"

namespace ember::optim {

GradAccumulator::GradAccumulator(nn::Module& model, Optimizer& opt, GradAccumulatorOptions o, LRScheduler* sched)
    : model_(model), opt_(opt), options_(o), sched_(sched), params_(model.parameters()) {
  EMBER_CHECK(o.accum_steps >= 1, "GradAccumulator: accum_steps must be >= 1, got ", o.accum_steps);
  EMBER_CHECK(std::isfinite(o.clip_norm) && o.clip_norm >= 0.0, "GradAccumulator: clip_norm must be >= 0 (0 = off), got ",
              o.clip_norm);
  EMBER_CHECK(!params_.empty(), "GradAccumulator: the model has no parameters");
  std::unordered_set<const TensorImpl*> owned;
  for (const Tensor& p : params_) {
    EMBER_CHECK(p.device() == params_[0].device(), "GradAccumulator: model parameters must be on one device, got ",
                describe(params_[0]), " and ", describe(p));
    owned.insert(p.unsafe_impl());
  }
  for (const Tensor& p : opt.parameters())
    EMBER_CHECK(owned.count(p.unsafe_impl()) == 1, "GradAccumulator: optimizer parameter ", describe(p),
                " is not a parameter of the model");
  last_lr_ = opt.lr();
  label_micro_step();
  if (options_.set_to_none) {
    touched_.assign(params_.size(), 0);
    for (size_t i = 0; i < params_.size(); ++i)
      hooks_.push_back(add_post_accumulate_grad_hook(params_[i], [this, i](const Tensor&) { touched_[i] = 1; }));
  }
}

GradAccumulator::~GradAccumulator() {
  for (size_t i = 0; i < hooks_.size(); ++i) remove_post_accumulate_grad_hook(params_[i], hooks_[i]);
}

double GradAccumulator::injection_at(int64_t step) const {
  for (const NonFiniteInjection& inj : options_.inject_non_finite)
    if (inj.micro_step == step) return inj.value;
  return 0.0;
}

void GradAccumulator::inject(double value) {
  NoGradGuard no_grad;
  for (const Tensor& p : params_) {
    Tensor g = p.grad();
    if (!g.defined() || g.numel() == 0) continue;
    g.view(Shape{g.numel()}).slice(0, 0, 1).fill_(value);
    return;
  }
  EMBER_FAIL("GradAccumulator: inject_non_finite: no parameter has a gradient to inject into");
}

bool GradAccumulator::backward(const Tensor& loss, int64_t count) {
  EMBER_CHECK(count >= 1, "GradAccumulator::backward: count (loss terms in the micro-batch) must be >= 1, got ", count);
  return backward_seeded(loss, count, static_cast<double>(count), "backward", "the mean over the micro-batch");
}

bool GradAccumulator::backward_sum(const Tensor& loss_sum, int64_t count) {
  EMBER_CHECK(count >= 0, "GradAccumulator::backward_sum: count (loss terms in the micro-batch) must be >= 0, got ",
              count);
  return backward_seeded(loss_sum, count, 1.0, "backward_sum", "the sum over the micro-batch");
}

bool GradAccumulator::backward_seeded(const Tensor& loss, int64_t count, double seed, const char* who,
                                      const char* what) {
  EMBER_CHECK(loss.defined() && loss.numel() == 1 && is_floating(loss.dtype()), "GradAccumulator::", who,
              ": loss must be a floating scalar (", what, "), got ", describe(loss));
  EMBER_CHECK(loss.requires_grad(), "GradAccumulator::", who, ": the loss ", describe(loss),
              " does not require grad (was the forward run under NoGradGuard?)");
  const bool last = window_micro_ + 1 >= options_.accum_steps;
  if (hook_) hook_->before_backward(last, window_count_ + count);
  // Test hook: into a gradient that already exists (under DataParallel always: bucket views, which the
  // last backward starts all-reducing) before the backward, else into the one it creates.
  const double injected = injection_at(micro_steps_ + 1);
  const bool inject_first = injected != 0.0 && params_[0].grad().defined();
  if (inject_first) inject(injected);
  // Seeding a mean with `count` (a sum with 1) makes .grad accumulate the sum of the per-term gradients
  // sum_i dl_i/dw. The window's loss sum stays on the device (no host sync per micro-batch):
  // status[loss] += loss * seed, the micro-batch's loss sum either way.
  kernels::add_to_status(status(), kStatusLossSum, loss, seed);
  loss.backward(full(loss.shape(), seed, TensorOptions{loss.dtype(), loss.device()}));
  if (injected != 0.0 && !inject_first) inject(injected);
  ++micro_steps_;
  ++window_micro_;
  window_count_ += count;
  label_micro_step();
  if (!last) return false;
  end_window();
  return true;
}

bool GradAccumulator::empty_micro_batch() {
  const bool last = window_micro_ + 1 >= options_.accum_steps;
  if (hook_) hook_->before_backward(last, window_count_);  // nothing becomes ready: reduce() starts the buckets
  ++micro_steps_;
  ++window_micro_;
  label_micro_step();
  if (!last) return false;
  end_window();
  return true;
}

void GradAccumulator::label_micro_step() const {
  kernels::set_check_context("micro-step " + std::to_string(micro_steps_ + 1));
}

bool GradAccumulator::flush() {
  const int64_t pending = hook_ ? hook_->agree_pending(window_micro_) : window_micro_;
  EMBER_CHECK(pending >= window_micro_, "GradAccumulator::flush: CommHook::agree_pending returned ", pending,
              ", below this rank's ", window_micro_, " pending micro-batches");
  if (pending == 0) return false;
  end_window();
  return true;
}

void GradAccumulator::restore_counters(int64_t micro_steps, int64_t optimizer_steps, int64_t skipped_steps) {
  EMBER_CHECK(window_micro_ == 0, "GradAccumulator::restore_counters: a window of ", window_micro_,
              " micro-batches is pending");
  EMBER_CHECK(micro_steps >= 0 && optimizer_steps >= 0 && skipped_steps >= 0,
              "GradAccumulator::restore_counters: counts must be >= 0, got ", micro_steps, ", ", optimizer_steps, ", ",
              skipped_steps);
  micro_steps_ = micro_steps;
  optimizer_steps_ = optimizer_steps;
  skipped_steps_ = skipped_steps;
  label_micro_step();
}

Tensor& GradAccumulator::status() {
  if (!status_.defined()) status_ = kernels::make_step_status(params_[0].device());
  return status_;
}

void GradAccumulator::zero_grads() {
  NoGradGuard no_grad;
  for (const Tensor& p : params_)
    if (Tensor g = p.grad(); g.defined()) g.zero_();
}

std::vector<std::pair<Tensor, Tensor>> GradAccumulator::hide_untouched_grads() {
  std::vector<std::pair<Tensor, Tensor>> hidden;
  if (!options_.set_to_none) return hidden;
  if (hook_) hook_->reduce_touched(touched_);
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].grad();
    if (touched_[i] || !g.defined()) continue;
    hidden.emplace_back(params_[i], g);
    params_[i].set_grad(Tensor());  // the optimizer skips it, as PyTorch skips `grad is None`
  }
  std::fill(touched_.begin(), touched_.end(), uint8_t{0});
  return hidden;
}

void GradAccumulator::restore_grads(const std::vector<std::pair<Tensor, Tensor>>& hidden) {
  for (const auto& [param, grad] : hidden) {
    Tensor p = param;
    p.set_grad(grad);  // the same buffer (a DataParallel bucket view stays a view)
  }
}

void GradAccumulator::end_window() {
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : params_)
    if (Tensor g = p.grad(); g.defined()) grads.push_back(g);
  int64_t total = window_count_;
  if (hook_) {
    total = hook_->reduce(grads, window_count_);
    EMBER_CHECK(total >= window_count_, "GradAccumulator: CommHook::reduce returned a global count of ", total,
                ", below the local count ", window_count_);
  }
  EMBER_CHECK(total >= 1, "GradAccumulator: the window ended with no samples or tokens (a count of 0 loss terms over ",
              window_micro_, " micro-batches, on every rank)");
  const auto hidden = hide_untouched_grads();
  struct Restore {  // the hidden gradients come back even when the step throws
    const std::vector<std::pair<Tensor, Tensor>>& hidden;
    ~Restore() { restore_grads(hidden); }
  } restore{hidden};
  if (!hidden.empty()) {  // their (zero) gradients take no part in the scale, norm or update
    grads.clear();
    for (const Tensor& p : params_)
      if (Tensor g = p.grad(); g.defined()) grads.push_back(g);
  }
  const double inv_total = 1.0 / static_cast<double>(total);
  last_lr_ = opt_.lr();
  // Scale, non-finite check, clip and update are queued back to back and decided on the device.
  if (fused_window_end()) {
    opt_.step_gated(inv_total, {.status = status()});  // reports the norm into the status
  } else {
    kernels::scale_many(grads, inv_total, status());
    opt_.step_gated(1.0, {.status = status(), .read = true, .clip_norm = options_.clip_norm,
                          .skip_non_finite = options_.skip_non_finite});
  }
  // The window's one host synchronization: loss sum, norm and flag in one copy.
  const std::vector<double> st = status_.to_vector<double>();
  const bool non_finite = st[kStatusNonFinite] != 0.0;
  const bool skip = non_finite && options_.skip_non_finite;
  last_loss_sum_ = st[kStatusLossSum];
  last_grad_norm_ = non_finite ? std::nan("") : std::sqrt(st[kStatusSumSquares]);
  last_skipped_ = skip;
  if (skip) {
    opt_.undo_skipped_step();
    ++skipped_steps_;
  } else {
    ++optimizer_steps_;
    if (sched_) sched_->step();
  }
  kernels::zero_status(status_);
  if (hook_) {
    hook_->close_window(model_, !skip);
  } else if (skip) {
    model_.discard_window();
  } else {
    model_.finish_window();
  }
  zero_grads();
  window_count_ = 0;
  window_micro_ = 0;
}

}  // namespace ember::optim
