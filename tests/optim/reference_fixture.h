/// @file tests/optim/reference_fixture.h @brief The PyTorch reference fixtures of scripts/make_reference.py: loading a case, building Ember's model and optimizer from it, the micro-batch schedule, and per-tensor comparison with tolerances.
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "nn/activation.h"
#include "nn/batchnorm.h"
#include "nn/functional.h"
#include "nn/linear.h"
#include "nn/sequential.h"
#include "optim/adamw.h"
#include "optim/sgd.h"

#ifndef EMBER_FIXTURE_DIR
#error "EMBER_FIXTURE_DIR (the source tree's tests/fixtures) must be defined by the build"
#endif

namespace ember::test::reference {

/// One fixture file (tests/fixtures/accumulation/<name>.safetensors; layout in scripts/make_reference.py).
struct Case {
  std::string name;
  SafetensorsContent content;

  /// The tensor called `key`; fails the test (naming the file) when it is missing.
  Tensor tensor(const std::string& key) const {
    Tensor t = content.find(key);
    INFO("fixture " << name << ": tensor " << key);
    REQUIRE(t.defined());
    return t;
  }
  bool has(const std::string& key) const { return content.find(key).defined(); }
  std::string meta(const std::string& key) const {
    auto it = content.metadata.find(key);
    INFO("fixture " << name << ": metadata " << key);
    REQUIRE(it != content.metadata.end());
    return it->second;
  }
  double meta_double(const std::string& key) const { return std::stod(meta(key)); }
  int64_t meta_int(const std::string& key) const { return std::stoll(meta(key)); }
  bool bn() const { return meta("model") == "bn_mlp"; }
  /// Ember's compute dtype: f64 for the MLP cases, f32 where an Ember layer has no f64 path (BatchNorm).
  DType dtype() const { return meta("dtype") == "f64" ? DType::f64 : DType::f32; }
};

inline Case load_case(const std::string& name) {
  return {name, load_safetensors(std::string(EMBER_FIXTURE_DIR) + "/accumulation/" + name + ".safetensors")};
}

/// One micro-batch: samples [begin, end) of x / y, run by `rank` in micro-step `step` of its window.
struct MicroBatch {
  int64_t rank = 0, step = 0, begin = 0, end = 0;
};

/// The windows' micro-batches, from "micro_batches" ("3,3,1;3,3,1": entry k*R + r of a window is rank
/// r's micro-batch of micro-step k; samples are consumed in that order).
inline std::vector<std::vector<MicroBatch>> schedule(const Case& c) {
  const int64_t ranks = c.meta_int("ranks");
  std::vector<std::vector<MicroBatch>> windows;
  std::stringstream all(c.meta("micro_batches"));
  int64_t offset = 0;
  for (std::string window; std::getline(all, window, ';');) {
    std::vector<MicroBatch>& w = windows.emplace_back();
    std::stringstream sizes(window);
    for (std::string b; std::getline(sizes, b, ',');) {
      const int64_t i = static_cast<int64_t>(w.size()), n = std::stoll(b);
      w.push_back({i % ranks, i / ranks, offset, offset + n});
      offset += n;
    }
  }
  return windows;
}

/// Micro-batch m's inputs (in the case's compute dtype) and targets.
inline Tensor inputs(const Case& c, const MicroBatch& m) {
  return c.tensor("x").slice(0, m.begin, m.end).contiguous().to(c.dtype());
}
inline Tensor targets(const Case& c, const MicroBatch& m) { return c.tensor("y").slice(0, m.begin, m.end).contiguous(); }

/// Linear -> [BatchNorm1d ->] ReLU -> Linear, names as torch.nn.Sequential's, state from init.*.
inline std::shared_ptr<nn::Sequential> make_model(const Case& c) {
  const Shape w0 = c.tensor("init.0.weight").shape();
  const int64_t hidden = w0[0], in = w0[1];
  const int64_t out = c.tensor(c.bn() ? "init.3.weight" : "init.2.weight").shape()[0];
  auto seq = std::make_shared<nn::Sequential>();
  seq->push_back(std::make_shared<nn::Linear>(nn::LinearOptions{in, hidden, true, c.dtype()}));
  if (c.bn()) {
    nn::BatchNormOptions o;
    o.window_stats = c.meta("bn_stats") == "window";
    seq->push_back(std::make_shared<nn::BatchNorm1d>(hidden, o));
  }
  seq->push_back(std::make_shared<nn::ReLU>());
  seq->push_back(std::make_shared<nn::Linear>(nn::LinearOptions{hidden, out, true, c.dtype()}));
  NamedTensors init;
  for (const auto& [key, t] : seq->state_dict()) init.emplace_back(key, c.tensor("init." + key));
  seq->load_state_dict(init);  // converts to each tensor's dtype (exact: the f32 cases' values are f32)
  return seq;
}

inline std::unique_ptr<optim::Optimizer> make_optimizer(const Case& c, std::vector<Tensor> params) {
  if (c.meta("optimizer") == "sgd")
    return std::make_unique<optim::SGD>(std::move(params),
                                        optim::SGDOptions{.lr = c.meta_double("lr"),
                                                          .momentum = c.meta_double("momentum"),
                                                          .nesterov = c.meta("nesterov") == "true",
                                                          .weight_decay = c.meta_double("weight_decay")});
  REQUIRE(c.meta("optimizer") == "adamw");
  return std::make_unique<optim::AdamW>(
      std::move(params), optim::AdamWOptions{.lr = c.meta_double("lr"),
                                             .betas = {c.meta_double("beta1"), c.meta_double("beta2")},
                                             .eps = c.meta_double("eps"),
                                             .weight_decay = c.meta_double("weight_decay")});
}

/// Micro-batch m's mean cross-entropy loss.
inline Tensor micro_loss(nn::Module& model, const Case& c, const MicroBatch& m) {
  return nn::functional::cross_entropy(model(inputs(c, m)), targets(c, m));
}

/// A tensor's values as doubles (any dtype, any device).
inline std::vector<double> values(const Tensor& t) {
  if (t.dtype() == DType::i64) {
    const auto v = t.to_vector<int64_t>();
    return {v.begin(), v.end()};
  }
  return t.to_vector<double>();
}

/// A bound on |got - want|, per tensor: rel * max|want| + abs_floor.
struct Tolerance {
  double rel = 0.0, abs_floor = 0.0;
};

/// Compares one tensor with its reference: every element within rel * max|want| (the tensor's own
/// scale, so a wrong bias cannot hide behind a large weight) + abs_floor. Reports the tensor's name,
/// the largest error, where, and the bound. Returns the largest error relative to max|want| (or the
/// absolute error when want is zero).
inline double expect_close_per_tensor(const std::string& name, const Tensor& got, const Tensor& want, Tolerance tol) {
  INFO(name << ": got " << describe(got) << ", want " << describe(want));
  REQUIRE(got.shape() == want.shape());
  const std::vector<double> g = values(got), w = values(want);
  double scale = 0.0, err = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    scale = std::max(scale, std::abs(w[i]));
    // NaN must fail: !(d <= err) is true for NaN
    if (const double d = std::abs(g[i] - w[i]); !(d <= err)) err = d, at = i;
  }
  const double bound = tol.rel * scale + tol.abs_floor;
  INFO(name << ": max |got - want| = " << err << " at element " << at << " (got " << (g.empty() ? 0.0 : g[at])
            << ", want " << (w.empty() ? 0.0 : w[at]) << "), bound " << bound << " = " << tol.rel << " * max|want| "
            << scale << " + " << tol.abs_floor);
  CHECK(err <= bound);
  return scale > 0.0 ? err / scale : err;
}

/// True when the reference gradient of `param` is zero in every window (a bias feeding BatchNorm: the
/// normalization subtracts the batch mean, so the exact gradient vanishes; the float64 reference holds
/// rounding residue of ~1e-17).
inline bool exact_zero_grad(const Case& c, const std::string& param, size_t windows) {
  for (size_t w = 0; w < windows; ++w)
    for (double v : values(c.tensor("grad." + std::to_string(w) + "." + param)))
      if (std::abs(v) > 1e-14) return false;
  return true;
}

/// The tolerance of each compared tensor (values: see the constants' comments).
class Policy {
 public:
  Policy(const Case& c, size_t windows) : f64_(c.dtype() == DType::f64) {
    for (const auto& [name, t] : c.content.tensors)
      if (name.rfind("init.", 0) == 0 && is_floating(t.dtype()) && c.has("grad.0." + name.substr(5)) &&
          exact_zero_grad(c, name.substr(5), windows))
        zero_grad_.push_back(name.substr(5));
  }
  /// Parameters whose exact gradient is zero (compared by absolute error).
  const std::vector<std::string>& zero_grad_params() const { return zero_grad_; }

  Tolerance for_key(const std::string& key, const Tensor& want) const {
    if (want.dtype() == DType::i64) return {0.0, 0.0};  // counts (steps, num_batches_tracked): exact
    for (const std::string& p : zero_grad_)
      if (key.rfind("grad.", 0) == 0 ? ends_with(key, "." + p) : key.rfind("state." + p + ".", 0) == 0)
        return {0.0, f64_ ? kZeroGradAbs64 : kZeroGradAbs32};
    return f64_ ? Tolerance{kRel64, kAbs64} : Tolerance{kRel32, kAbs32};
  }

  // float64 cases (Ember computes in f64 on the CPU, PyTorch in f64): the two differ only in the order
  // of their sums (GEMM blocking, the per-micro-batch sums added into .grad, then / T instead of the
  // mean's 1 / T inside the backward; under mpirun the all-reduce), a few ulps (2.2e-16) of the largest
  // term per sum; the few SGD or AdamW steps after that add rounding of the same size. Measured: at
  // most 2.7e-15 relative to the tensor's max (ragged, window 1's grad of 2.bias), 3.0e-16 on 3 ranks.
  // 1e-12 leaves a factor of ~400 for other BLAS builds and still fails anything wrong in its 12th digit.
  static constexpr double kRel64 = 1e-12;
  static constexpr double kAbs64 = 1e-15;  // tensors whose elements are all ~0 (none at present)
  // float32 cases (BatchNorm: Ember in f32 against the exact f64 result for the same f32 inputs):
  // f32 rounding (eps 6e-8) of sums of <= 8 terms, amplified by BatchNorm's backward through the
  // 1/sigma of a micro-batch of 3-4 samples. How much depends on the GEMM kernels' summation order and
  // FMA use: measured at most 5.7e-7 relative with OpenBLAS's SSE3 (Prescott) kernels, 3.3e-5 with its
  // Haswell and SkylakeX kernels (grad and momentum of 0.weight, the 3-rank window-merged case). 1e-4
  // leaves a factor of 3 over the worst; a wrong normalization or weighting is off by O(1).
  static constexpr double kRel32 = 1e-4;
  static constexpr double kAbs32 = 1e-7;
  // A parameter with exact gradient zero (the Linear bias feeding BatchNorm): its gradient is pure
  // rounding residue of a sum of per-sample terms of size <= ~0.3, so it is compared by absolute
  // error, as is its momentum buffer (weight_decay * p, ~3e-3, plus that residue). Measured (f32):
  // at most 2.0e-8 with the Prescott kernels, 2.1e-6 with the Haswell and SkylakeX ones (the 3-rank
  // window-merged case's grad of 0.bias); bound 1e-5, a factor of ~5.
  static constexpr double kZeroGradAbs64 = 1e-15;
  static constexpr double kZeroGradAbs32 = 1e-5;

 private:
  static bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  bool f64_;
  std::vector<std::string> zero_grad_;
};

/// Every tensor of the model's state_dict (parameters and buffers) against final.*; and no final.*
/// tensor without a counterpart in the model.
inline void check_module_state(const Case& c, nn::Module& model, const Policy& policy, const std::string& where = "") {
  size_t fixture_keys = 0;
  for (const auto& [name, _] : c.content.tensors) fixture_keys += name.rfind("final.", 0) == 0;
  const NamedTensors state = model.state_dict();
  CHECK(state.size() == fixture_keys);
  for (const auto& [key, t] : state) {
    const Tensor want = c.tensor("final." + key);
    expect_close_per_tensor(where + "final." + key, t, want, policy.for_key("final." + key, want));
  }
}

/// Every tensor of the optimizer's state_dict (keyed by parameter names: momentum buffers, AdamW's
/// moments and step counts, the step count, the lr) against state.*; and no state.* left unchecked.
inline void check_optimizer_state(const Case& c, nn::Module& model, const optim::Optimizer& opt, const Policy& policy,
                                  const std::string& where = "") {
  size_t fixture_keys = 0;
  for (const auto& [name, _] : c.content.tensors) fixture_keys += name.rfind("state.", 0) == 0;
  const NamedTensors state = opt.state_dict(model.named_parameters());
  CHECK(state.size() == fixture_keys);
  for (const auto& [key, t] : state) {
    const Tensor want = c.tensor("state." + key);
    expect_close_per_tensor(where + "state." + key, t, want, policy.for_key("state." + key, want));
  }
}

/// Each window's gradient norm (before clipping) and mean loss as GradAccumulator reported them, and
/// which windows clipped.
inline void check_window_scalars(const Case& c, const std::vector<double>& grad_norm, const std::vector<double>& loss,
                                 const Policy& policy) {
  const Tensor want_norm = c.tensor("grad_norm"), want_loss = c.tensor("loss");
  const Shape s{static_cast<int64_t>(grad_norm.size())};
  expect_close_per_tensor("grad_norm", from_vector(grad_norm, s, TensorOptions{}.set_dtype(DType::f64)), want_norm,
                          policy.for_key("grad_norm", want_norm));
  if (!loss.empty())
    expect_close_per_tensor("loss", from_vector(loss, s, TensorOptions{}.set_dtype(DType::f64)), want_loss,
                            policy.for_key("loss", want_loss));
  if (c.meta_double("clip_norm") > 0.0) {
    std::string clipped;
    for (double n : grad_norm) clipped += std::string(clipped.empty() ? "" : ",") + (n > c.meta_double("clip_norm") ? "1" : "0");
    CHECK(clipped == c.meta("clipped_windows"));
  }
}

}  // namespace ember::test::reference
