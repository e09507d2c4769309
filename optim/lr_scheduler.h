/// @file optim/lr_scheduler.h @brief Learning-rate schedules advanced once per optimizer step: StepLR, CosineWithWarmup, ConstantWithWarmup.
#pragma once
#include <cstdint>
#include <vector>

#include "optim/optimizer.h"

namespace ember::optim {

/// A schedule is a closed form lr_g(s) of the number s of optimizer steps done, from each group's
/// initial_lr. The constructor sets lr(0) (the rate of the first update); step() is called once per
/// optimizer step (GradAccumulator does it at each window end that applied an update, never per
/// micro-batch) and sets lr(s + 1).
class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& opt) : opt_(opt) {}
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  /// One optimizer step done: sets the rate for the next one.
  void step() { set_step(step_ + 1); }
  /// Jumps to `steps` optimizer steps done (resuming a run) and sets that rate. Throws when negative.
  void set_step(int64_t steps);
  /// Optimizer steps counted so far.
  int64_t last_step() const { return step_; }
  /// The rate last set on the first group (PyTorch's get_last_lr()[0]).
  double last_lr() const { return opt_.lr(); }
  /// The rate last set on each group.
  std::vector<double> last_lrs() const;
  /// The rate of a group with initial rate `base` after `steps` steps.
  virtual double lr_at(double base, int64_t steps) const = 0;

 protected:
  /// Subclasses call this at the end of their constructor (after validating their options).
  void start() { set_step(0); }
  Optimizer& opt_;

 private:
  int64_t step_ = 0;
};

/// lr = base * gamma^floor(s / step_size) (torch.optim.lr_scheduler.StepLR). step_size >= 1, gamma > 0.
class StepLR final : public LRScheduler {
 public:
  StepLR(Optimizer& opt, int64_t step_size, double gamma = 0.1);
  double lr_at(double base, int64_t steps) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

/// Linear warm-up then half-cosine decay to min_lr:
///   s <  warmup:          lr = base * (s + 1) / warmup
///   warmup <= s < total:  lr = min_lr + (base - min_lr) * (1 + cos(pi * (s - warmup) / (total - warmup))) / 2
///   s >= total:           lr = min_lr
/// warmup_steps >= 0, total_steps >= 1, warmup_steps <= total_steps, min_lr >= 0.
class CosineWithWarmup final : public LRScheduler {
 public:
  CosineWithWarmup(Optimizer& opt, int64_t warmup_steps, int64_t total_steps, double min_lr = 0.0);
  double lr_at(double base, int64_t steps) const override;

 private:
  int64_t warmup_, total_;
  double min_lr_;
};

/// Linear warm-up (as CosineWithWarmup) then constant base. warmup_steps >= 0 (0: constant throughout).
class ConstantWithWarmup final : public LRScheduler {
 public:
  ConstantWithWarmup(Optimizer& opt, int64_t warmup_steps);
  double lr_at(double base, int64_t steps) const override;

 private:
  int64_t warmup_;
};

}  // namespace ember::optim
