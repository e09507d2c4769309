/// @file optim/optimizer.cpp @brief Optimizer base: group validation, zero_grad, learning rate, state_dict save/load (by index or by name).
#include "optim/optimizer.h"

#include <charconv>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "core/grad_mode.h"
#include "kernels/accumulate.h"

namespace ember::optim {

Optimizer::Optimizer(std::vector<ParamGroup> groups, std::string name) : name_(std::move(name)), groups_(std::move(groups)) {
  EMBER_CHECK(!groups_.empty(), name_, ": no parameter groups given");
  std::unordered_set<const TensorImpl*> seen;
  size_t offset = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    ParamGroup& pg = groups_[g];
    EMBER_CHECK(!pg.params.empty(), name_, ": parameter group ", g, " is empty");
    EMBER_CHECK(std::isfinite(pg.lr) && pg.lr >= 0.0, name_, ": invalid learning rate ", pg.lr, " in group ", g,
                " (must be >= 0)");
    EMBER_CHECK(std::isfinite(pg.weight_decay) && pg.weight_decay >= 0.0, name_, ": invalid weight_decay ",
                pg.weight_decay, " in group ", g, " (must be >= 0)");
    if (pg.initial_lr < 0.0) pg.initial_lr = pg.lr;
    for (size_t i = 0; i < pg.params.size(); ++i) {
      const Tensor& p = pg.params[i];
      EMBER_CHECK(p.defined(), name_, ": parameter ", i, " of group ", g, " is undefined");
      EMBER_CHECK(is_floating(p.dtype()) && p.is_leaf() && p.requires_grad() && p.is_contiguous(), name_,
                  ": parameter ", i, " of group ", g, " (", describe(p),
                  ") must be a contiguous floating leaf tensor that requires grad");
      EMBER_CHECK(seen.insert(p.unsafe_impl()).second, name_, ": parameter ", i, " of group ", g, " (", describe(p),
                  ") appears more than once");
      // device() is the first parameter's, checked to be defined before any comparison.
      EMBER_CHECK(p.device() == device(), name_, ": all parameters must be on one device, got ", device().str(),
                  " and ", describe(p), " (parameter ", i, " of group ", g, ")");
    }
    offsets_.push_back(offset);
    offset += pg.params.size();
  }
}

void Optimizer::zero_grad() {
  NoGradGuard no_grad;
  for (ParamGroup& pg : groups_)
    for (Tensor& p : pg.params)
      if (Tensor g = p.grad(); g.defined()) g.zero_();
}

std::vector<Tensor> Optimizer::parameters() const {
  std::vector<Tensor> out;
  for (const ParamGroup& pg : groups_) out.insert(out.end(), pg.params.begin(), pg.params.end());
  return out;
}

void Optimizer::set_lr(double lr) {
  EMBER_CHECK(std::isfinite(lr) && lr >= 0.0, name_, ": invalid learning rate ", lr, " (must be >= 0)");
  for (ParamGroup& pg : groups_) pg.lr = lr;
}

// ---------------------------------------------------------------- state_dict
namespace {
Tensor scalar_i64(int64_t v) { return from_vector(std::vector<int64_t>{v}, {}); }
Tensor scalar_f64(double v) { return from_vector(std::vector<double>{v}, {}, TensorOptions{}.set_dtype(DType::f64)); }
}  // namespace

std::vector<std::string> Optimizer::names_for(const NamedTensors& named_params) const {
  std::unordered_map<const TensorImpl*, std::string> by_impl;
  for (const auto& [n, t] : named_params) by_impl.emplace(t.unsafe_impl(), n);
  std::vector<std::string> keys;
  for (const Tensor& p : parameters()) {
    auto it = by_impl.find(p.unsafe_impl());
    EMBER_CHECK(it != by_impl.end(), name_, ": parameter ", keys.size(), " (", describe(p),
                ") has no name in the given named parameters (pass the model's named_parameters())");
    keys.push_back(it->second);
  }
  return keys;
}

NamedTensors Optimizer::state_dict_keyed(const std::vector<std::string>& keys) const {
  NamedTensors out;
  out.emplace_back("step", scalar_i64(steps_));
  for (size_t g = 0; g < groups_.size(); ++g) out.emplace_back("group." + std::to_string(g) + ".lr", scalar_f64(groups_[g].lr));
  for (size_t i = 0; i < keys.size(); ++i)
    for (auto& [slot, t] : param_state(i))
      if (t.defined()) out.emplace_back(keys[i] + "." + slot, t.detach().clone());  // a snapshot, not the live buffer
  return out;
}

NamedTensors Optimizer::state_dict() const {
  std::vector<std::string> keys;
  for (size_t i = 0; i < offsets_.back() + groups_.back().params.size(); ++i) keys.push_back(std::to_string(i));
  return state_dict_keyed(keys);
}

NamedTensors Optimizer::state_dict(const NamedTensors& named_params) const {
  return state_dict_keyed(names_for(named_params));
}

void Optimizer::load_state_dict_keyed(const NamedTensors& state, const std::vector<std::string>& keys) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < keys.size(); ++i) index.emplace(keys[i], i);
  const std::vector<Tensor> params = parameters();
  // Validate everything first so a bad entry leaves the optimizer unchanged.
  struct Item { size_t param; std::string slot; const Tensor* value; };
  std::vector<Item> items;
  int64_t steps = steps_;
  std::vector<double> lrs;
  for (const ParamGroup& pg : groups_) lrs.push_back(pg.lr);
  for (const auto& [key, t] : state) {
    EMBER_CHECK(t.defined(), name_, ".load_state_dict: entry '", key, "' is undefined");
    if (key == "step") {
      EMBER_CHECK(t.numel() == 1 && t.item() >= 0, name_, ".load_state_dict: 'step' must hold one count >= 0, got ",
                  describe(t));
      steps = static_cast<int64_t>(t.item());
      continue;
    }
    const size_t dot = key.rfind('.');
    EMBER_CHECK(dot != std::string::npos && dot > 0, name_, ".load_state_dict: unexpected entry '", key, "'");
    const std::string owner = key.substr(0, dot), slot = key.substr(dot + 1);
    if (auto it = index.find(owner); it != index.end()) {
      bool known = false;
      for (const auto& [s, unused] : param_state(it->second)) known = known || s == slot;
      EMBER_CHECK(known, name_, ".load_state_dict: entry '", key, "' has an unknown slot '", slot, "' for ", name_);
      items.push_back({it->second, slot, &t});
      continue;
    }
    if (owner.rfind("group.", 0) == 0 && slot == "lr") {
      size_t g = 0;
      const std::string num = owner.substr(6);
      const auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), g);
      EMBER_CHECK(ec == std::errc() && ptr == num.data() + num.size() && g < groups_.size(), name_,
                  ".load_state_dict: entry '", key, "' names group ", num, " but there are ", groups_.size(),
                  " groups");
      EMBER_CHECK(t.numel() == 1 && t.item() >= 0, name_, ".load_state_dict: '", key, "' must hold one lr >= 0, got ",
                  describe(t));
      lrs[g] = t.item();
      continue;
    }
    EMBER_FAIL(name_, ".load_state_dict: entry '", key, "' names no parameter of this optimizer (", keys.size(),
               " parameters)");
  }
  for (const Item& it : items) {
    const Tensor& p = params[it.param];
    const Tensor& v = *it.value;
    // Per-parameter tensors have the parameter's shape; scalars (a step count) have one element.
    EMBER_CHECK(v.shape() == p.shape() || v.numel() == 1, name_, ".load_state_dict: '", keys[it.param], ".", it.slot,
                "' is ", describe(v), " but the parameter is ", describe(p));
    Tensor local = v.shape() == p.shape() ? v.to(p.device()).to(p.dtype()).clone() : v;
    set_param_state(it.param, it.slot, local.detach());
  }
  steps_ = steps;
  for (size_t g = 0; g < groups_.size(); ++g) groups_[g].lr = lrs[g];
}

void Optimizer::load_state_dict(const NamedTensors& state) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < parameters().size(); ++i) keys.push_back(std::to_string(i));
  load_state_dict_keyed(state, keys);
}

void Optimizer::load_state_dict(const NamedTensors& state, const NamedTensors& named_params) {
  load_state_dict_keyed(state, names_for(named_params));
}

ScaleResult Optimizer::step_scaled(double grad_scale) {
  Tensor status = kernels::make_step_status(device());
  step_gated(grad_scale, {.status = status});
  return kernels::read_scale_result(status);
}

}  // namespace ember::optim
