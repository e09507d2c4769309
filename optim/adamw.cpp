/// @file optim/adamw.cpp @brief AdamW: option validation, the per-group fused update, moment and step-count state.
#include "optim/adamw.h"

#include <cmath>
#include <map>

#include "core/grad_mode.h"
#include "kernels/optimizer.h"

namespace ember::optim {
namespace {

std::vector<ParamGroup> one_group(std::vector<Tensor> params, const AdamWOptions& o) {
  return {ParamGroup{std::move(params), o.lr, o.weight_decay}};
}

const AdamWOptions& validated(const AdamWOptions& o) {
  EMBER_CHECK(std::isfinite(o.lr) && o.lr >= 0.0, "AdamW: invalid learning rate ", o.lr, " (must be >= 0)");
  EMBER_CHECK(std::isfinite(o.eps) && o.eps >= 0.0, "AdamW: invalid eps ", o.eps, " (must be >= 0)");
  EMBER_CHECK(o.betas.first >= 0.0 && o.betas.first < 1.0, "AdamW: invalid beta1 ", o.betas.first,
              " (must be in [0, 1))");
  EMBER_CHECK(o.betas.second >= 0.0 && o.betas.second < 1.0, "AdamW: invalid beta2 ", o.betas.second,
              " (must be in [0, 1))");
  EMBER_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0.0, "AdamW: invalid weight_decay ",
              o.weight_decay, " (must be >= 0)");
  return o;
}

}  // namespace

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options)
    : AdamW(one_group(std::move(params), options), options) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : Optimizer(std::move(groups), "AdamW"), options_(validated(options)) {
  state_.resize(parameters().size());
}

void AdamW::step_gated(double grad_scale, const StepGate& gate) {
  NoGradGuard no_grad;
  stepped_last_.clear();
  for (size_t g = 0; g < param_groups().size(); ++g) {
    ParamGroup& pg = param_groups()[g];
    // Parameters grouped by their step count (bias corrections differ): normally one list per group.
    struct Lists { std::vector<Tensor> params, grads, exp_avgs, exp_avg_sqs; };
    std::map<int64_t, Lists> by_step;
    for (size_t i = 0; i < pg.params.size(); ++i) {
      Tensor grad = pg.params[i].grad();
      if (!grad.defined()) continue;
      State& s = state_[group_offset(g) + i];
      if (!s.exp_avg.defined()) {
        s.exp_avg = zeros_like(pg.params[i]);
        s.exp_avg_sq = zeros_like(pg.params[i]);
      }
      stepped_last_.push_back(group_offset(g) + i);
      Lists& l = by_step[++s.step];
      l.params.push_back(pg.params[i]);
      l.grads.push_back(grad);
      l.exp_avgs.push_back(s.exp_avg);
      l.exp_avg_sqs.push_back(s.exp_avg_sq);
    }
    const kernels::AdamWStepOptions o{pg.lr, options_.betas.first, options_.betas.second, options_.eps,
                                      pg.weight_decay};
    for (auto& [step, l] : by_step)
      kernels::adamw_step(l.params, l.grads, l.exp_avgs, l.exp_avg_sqs, o, step, grad_scale, gate);
  }
  count_step();
}

void AdamW::undo_skipped_step() {
  Optimizer::undo_skipped_step();
  for (size_t i : stepped_last_) {
    State& s = state_[i];
    if (--s.step == 0) s.exp_avg = s.exp_avg_sq = Tensor();  // created for the skipped step: fresh again
  }
  stepped_last_.clear();
}

NamedTensors AdamW::param_state(size_t i) const {
  const State& s = state_.at(i);
  Tensor step = s.exp_avg.defined() ? from_vector(std::vector<int64_t>{s.step}, {}) : Tensor();
  return {{"exp_avg", s.exp_avg}, {"exp_avg_sq", s.exp_avg_sq}, {"step", step}};
}

void AdamW::set_param_state(size_t i, const std::string& slot, const Tensor& value) {
  State& s = state_.at(i);
  const Tensor p = parameters().at(i);
  if (slot == "step") {
    EMBER_CHECK(value.numel() == 1 && value.item() >= 0, "AdamW.load_state_dict: step must be one count >= 0, got ",
                describe(value));
    s.step = static_cast<int64_t>(value.item());
    return;
  }
  EMBER_CHECK(slot == "exp_avg" || slot == "exp_avg_sq", "AdamW.load_state_dict: unknown state slot '", slot, "'");
  EMBER_CHECK(value.shape() == p.shape(), "AdamW.load_state_dict: ", slot, " ", describe(value),
              " does not match parameter ", describe(p));
  (slot == "exp_avg" ? s.exp_avg : s.exp_avg_sq) = value;
}

}  // namespace ember::optim
