/// @file nn/module.cpp @brief nn::Module: registration, recursive dotted names, train/eval, in-place device moves, strict state_dict loading.
#include "nn/module.h"

#include <set>

#include "core/grad_mode.h"

namespace ember::nn {
namespace {

void check_name(const std::string& name, const char* what, const std::vector<std::string>& taken) {
  EMBER_CHECK(!name.empty(), what, ": empty name");
  EMBER_CHECK(name.find('.') == std::string::npos, what, ": name '", name, "' must not contain '.'");
  for (const auto& t : taken) EMBER_CHECK(t != name, what, ": name '", name, "' is already registered");
}

/// Moves the data behind `t` to `d` without changing the TensorImpl's identity (layer handles stay valid).
void move_in_place(const Tensor& t, Device d) {
  if (!t.defined() || t.device() == d) return;
  Tensor moved = t.detach().to(d);
  TensorImpl* impl = t.unsafe_impl();
  impl->storage = moved.storage();
  impl->shape = moved.shape();
  impl->strides = moved.strides();
  impl->offset = moved.offset();
  impl->device = d;
}

}  // namespace

std::vector<std::string> Module::local_names() const {
  std::vector<std::string> names;
  for (const auto& [n, _] : params_) names.push_back(n);
  for (const auto& [n, _] : buffers_) names.push_back(n);
  for (const auto& [n, _] : children_) names.push_back(n);
  return names;
}

Tensor Module::forward(const Tensor&) { EMBER_FAIL(str(), ": forward(Tensor) is not implemented by this module"); }

Tensor Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_name(name, "register_parameter", local_names());
  EMBER_CHECK(t.defined(), "register_parameter: '", name, "' is undefined");
  EMBER_CHECK(t.is_leaf(), "register_parameter: '", name, "' must be a leaf tensor (detach it first)");
  if (requires_grad) t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_name(name, "register_buffer", local_names());
  buffers_.emplace_back(name, t);
  return t;
}

void Module::register_module_impl(const std::string& name, std::shared_ptr<Module> m) {
  check_name(name, "register_module", local_names());
  EMBER_CHECK(m != nullptr, "register_module: '", name, "' is null");
  children_.emplace_back(name, std::move(m));
}

void Module::collect(const std::string& prefix, bool params, NamedTensors& out) const {
  for (const auto& [n, t] : params ? params_ : buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, c] : children_) c->collect(prefix + n + ".", params, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [_, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::buffers() const {
  std::vector<Tensor> out;
  for (auto& [_, t] : named_buffers()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const { return children_; }

void Module::train(bool on) {
  training_ = on;
  for (auto& [_, c] : children_) c->train(on);
}

void Module::to(Device d) {
  NoGradGuard ng;
  for (auto& [_, p] : named_parameters()) {
    move_in_place(p, d);
    if (p.grad().defined()) move_in_place(p.grad(), d);
  }
  for (auto& [_, b] : named_buffers()) move_in_place(b, d);
}

Device Module::device() const {
  for (auto& [_, p] : named_parameters()) return p.device();
  for (auto& [_, b] : named_buffers()) return b.device();
  return Device::cpu();
}

void Module::zero_grad() {
  NoGradGuard ng;
  for (auto& p : parameters()) {
    Tensor g = p.grad();
    if (g.defined()) g.zero_();
  }
}

NamedTensors Module::state_dict() const {
  NamedTensors out = named_parameters();
  for (auto& nb : named_buffers()) out.push_back(nb);
  return out;
}

void Module::load_state_dict(const NamedTensors& state) {
  NamedTensors mine = state_dict();
  std::set<std::string> given, expected;
  for (const auto& [n, _] : state) given.insert(n);
  std::string missing, unexpected, mismatched;
  for (const auto& [n, t] : mine) {
    expected.insert(n);
    if (!given.count(n)) missing += (missing.empty() ? "" : ", ") + n;
  }
  for (const auto& [n, t] : state) {
    if (!expected.count(n)) {
      unexpected += (unexpected.empty() ? "" : ", ") + n;
      continue;
    }
    for (const auto& [m, mt] : mine)
      if (m == n && mt.shape() != t.shape())
        mismatched += (mismatched.empty() ? "" : ", ") + n + " (expected " + shape_str(mt.shape()) + ", got " +
                      shape_str(t.shape()) + ")";
  }
  EMBER_CHECK(missing.empty() && unexpected.empty() && mismatched.empty(), "load_state_dict: ",
              missing.empty() ? "" : "missing keys: " + missing + "; ",
              unexpected.empty() ? "" : "unexpected keys: " + unexpected + "; ",
              mismatched.empty() ? "" : "shape mismatch: " + mismatched);
  NoGradGuard ng;
  for (auto& [n, t] : mine)
    for (const auto& [m, src] : state)
      if (m == n) {
        Tensor dst = t;
        dst.copy_(src);
      }
}

void Module::finish_window() {
  for (auto& [_, c] : children_) c->finish_window();
}

void Module::discard_window() {
  for (auto& [_, c] : children_) c->discard_window();
}

}  // namespace ember::nn
