/// @file optim/lr_scheduler.cpp @brief The learning-rate schedules' closed forms and validation.
#include "optim/lr_scheduler.h"

#include <cmath>
#include <numbers>

namespace ember::optim {

void LRScheduler::set_step(int64_t steps) {
  EMBER_CHECK(steps >= 0, "LRScheduler::set_step: step count must be >= 0, got ", steps);
  step_ = steps;
  for (ParamGroup& g : opt_.param_groups()) g.lr = lr_at(g.initial_lr, steps);
}

std::vector<double> LRScheduler::last_lrs() const {
  std::vector<double> out;
  for (const ParamGroup& g : opt_.param_groups()) out.push_back(g.lr);
  return out;
}

namespace {
double warmup_factor(int64_t s, int64_t warmup) {
  return static_cast<double>(s + 1) / static_cast<double>(warmup);
}
}  // namespace

StepLR::StepLR(Optimizer& opt, int64_t step_size, double gamma) : LRScheduler(opt), step_size_(step_size), gamma_(gamma) {
  EMBER_CHECK(step_size >= 1, "StepLR: step_size must be >= 1, got ", step_size);
  EMBER_CHECK(std::isfinite(gamma) && gamma > 0.0, "StepLR: gamma must be > 0, got ", gamma);
  start();
}

double StepLR::lr_at(double base, int64_t steps) const {
  return base * std::pow(gamma_, static_cast<double>(steps / step_size_));
}

CosineWithWarmup::CosineWithWarmup(Optimizer& opt, int64_t warmup_steps, int64_t total_steps, double min_lr)
    : LRScheduler(opt), warmup_(warmup_steps), total_(total_steps), min_lr_(min_lr) {
  EMBER_CHECK(total_steps >= 1, "CosineWithWarmup: total_steps must be >= 1, got ", total_steps);
  EMBER_CHECK(warmup_steps >= 0 && warmup_steps <= total_steps, "CosineWithWarmup: warmup_steps must be in [0, ",
              total_steps, "] (total_steps), got ", warmup_steps);
  EMBER_CHECK(std::isfinite(min_lr) && min_lr >= 0.0, "CosineWithWarmup: min_lr must be >= 0, got ", min_lr);
  start();
}

double CosineWithWarmup::lr_at(double base, int64_t s) const {
  if (s < warmup_) return base * warmup_factor(s, warmup_);
  if (s >= total_) return min_lr_;
  const double progress = static_cast<double>(s - warmup_) / static_cast<double>(total_ - warmup_);
  return min_lr_ + (base - min_lr_) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

ConstantWithWarmup::ConstantWithWarmup(Optimizer& opt, int64_t warmup_steps) : LRScheduler(opt), warmup_(warmup_steps) {
  EMBER_CHECK(warmup_steps >= 0, "ConstantWithWarmup: warmup_steps must be >= 0, got ", warmup_steps);
  start();
}

double ConstantWithWarmup::lr_at(double base, int64_t s) const {
  return s < warmup_ ? base * warmup_factor(s, warmup_) : base;
}

}  // namespace ember::optim
