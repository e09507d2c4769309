/// @file optim/sgd.cpp @brief SGD: option validation, the per-group fused update, momentum-buffer state.
#include "optim/sgd.h"

#include <cmath>

#include "core/grad_mode.h"
#include "kernels/optimizer.h"

namespace ember::optim {
namespace {

std::vector<ParamGroup> one_group(std::vector<Tensor> params, const SGDOptions& o) {
  return {ParamGroup{std::move(params), o.lr, o.weight_decay}};
}

const SGDOptions& validated(const SGDOptions& o) {
  EMBER_CHECK(std::isfinite(o.lr) && o.lr >= 0.0, "SGD: invalid learning rate ", o.lr, " (must be >= 0)");
  EMBER_CHECK(std::isfinite(o.momentum) && o.momentum >= 0.0, "SGD: invalid momentum ", o.momentum, " (must be >= 0)");
  EMBER_CHECK(o.dampening >= 0.0 && o.dampening <= 1.0, "SGD: invalid dampening ", o.dampening,
              " (must be in [0, 1])");
  EMBER_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0.0, "SGD: invalid weight_decay ", o.weight_decay,
              " (must be >= 0)");
  EMBER_CHECK(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0),
              "SGD: nesterov momentum requires momentum > 0 and dampening == 0, got momentum ", o.momentum,
              " and dampening ", o.dampening);
  return o;
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, SGDOptions options) : SGD(one_group(std::move(params), options), options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options)
    : Optimizer(std::move(groups), "SGD"), options_(validated(options)) {
  momentum_buffers_.resize(parameters().size());
}

void SGD::step_gated(double grad_scale, const StepGate& gate) {
  NoGradGuard no_grad;
  fresh_last_.clear();
  const bool use_momentum = options_.momentum != 0.0;
  for (size_t g = 0; g < param_groups().size(); ++g) {
    ParamGroup& pg = param_groups()[g];
    // Parameters whose momentum buffer starts now (buf = g) and those that read it: normally all of a
    // group's parameters fall in one of the two, so this is one kernel call per group.
    struct Lists { std::vector<Tensor> params, grads, bufs; } fresh, running;
    for (size_t i = 0; i < pg.params.size(); ++i) {
      Tensor grad = pg.params[i].grad();
      if (!grad.defined()) continue;
      Lists* l = &running;
      if (use_momentum) {
        Tensor& buf = momentum_buffers_[group_offset(g) + i];
        if (!buf.defined()) {
          buf = empty_like(pg.params[i]);
          fresh_last_.push_back(group_offset(g) + i);
          l = &fresh;
        }
        l->bufs.push_back(buf);
      }
      l->params.push_back(pg.params[i]);
      l->grads.push_back(grad);
    }
    kernels::SgdStepOptions o{pg.lr, options_.momentum, options_.dampening, pg.weight_decay, options_.nesterov, false};
    for (Lists* l : {&fresh, &running}) {
      if (l->params.empty()) continue;
      o.init_momentum = l == &fresh;
      kernels::sgd_step(l->params, l->grads, l->bufs, o, grad_scale, gate);
    }
  }
  count_step();
}

void SGD::undo_skipped_step() {
  Optimizer::undo_skipped_step();
  for (size_t i : fresh_last_) momentum_buffers_[i] = Tensor();  // never written: the next step starts it
  fresh_last_.clear();
}

NamedTensors SGD::param_state(size_t i) const { return {{"momentum_buffer", momentum_buffers_.at(i)}}; }

void SGD::set_param_state(size_t i, const std::string& slot, const Tensor& value) {
  EMBER_CHECK(slot == "momentum_buffer", "SGD.load_state_dict: unknown state slot '", slot, "'");
  const Tensor p = parameters().at(i);
  EMBER_CHECK(value.shape() == p.shape(), "SGD.load_state_dict: momentum_buffer ", describe(value),
              " does not match parameter ", describe(p));
  momentum_buffers_.at(i) = value;
}

}  // namespace ember::optim
