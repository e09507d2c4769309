/// @file tests/optim/fixtures.h @brief Shared pieces of the accumulation tests: a core-ops MLP, data, mean cross-entropy, a gradient-recording optimizer, relative differences.
#pragma once
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "nn/functional.h"
#include "nn/module.h"
#include "kernels/optimizer.h"
#include "optim/optimizer.h"
#include "tests/harness/backends.h"

namespace ember::test::optim_fixtures {

/// Linear -> ReLU -> Linear -> ReLU -> Linear, written with core ops so it does not depend on nn layers.
/// Counts finish_window() calls.
class CoreMLP : public nn::Module {
 public:
  CoreMLP(int64_t in, int64_t hidden, int64_t out, uint64_t seed, Device d = Device::cpu()) {
    const TensorOptions o = TensorOptions{}.set_device(d);
    const double s1 = 1.0 / std::sqrt(static_cast<double>(in)), s2 = 1.0 / std::sqrt(static_cast<double>(hidden));
    w1_ = register_parameter("w1", random_input({in, hidden}, seed, -s1, s1, o));
    b1_ = register_parameter("b1", random_input({hidden}, seed + 1, -s1, s1, o));
    w2_ = register_parameter("w2", random_input({hidden, hidden}, seed + 2, -s2, s2, o));
    b2_ = register_parameter("b2", random_input({hidden}, seed + 3, -s2, s2, o));
    w3_ = register_parameter("w3", random_input({hidden, out}, seed + 4, -s2, s2, o));
    b3_ = register_parameter("b3", random_input({out}, seed + 5, -s2, s2, o));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = relu(matmul(x, w1_) + b1_);
    h = relu(matmul(h, w2_) + b2_);
    return matmul(h, w3_) + b3_;
  }
  void finish_window() override {
    ++windows_finished;
    nn::Module::finish_window();
  }
  int windows_finished = 0;

 private:
  Tensor w1_, b1_, w2_, b2_, w3_, b3_;
};

/// conv3x3(1 -> 4, padding 1) -> ReLU -> max_pool 2 -> flatten -> Linear(4*4*4 -> out), on [N, 1, 8, 8]
/// inputs, from the functional ops (no BatchNorm).
class CoreCNN : public nn::Module {
 public:
  CoreCNN(int64_t out, uint64_t seed) {
    conv_w_ = register_parameter("conv_w", random_input({4, 1, 3, 3}, seed, -0.33, 0.33));
    conv_b_ = register_parameter("conv_b", random_input({4}, seed + 1, -0.33, 0.33));
    fc_w_ = register_parameter("fc_w", random_input({64, out}, seed + 2, -0.125, 0.125));
    fc_b_ = register_parameter("fc_b", random_input({out}, seed + 3, -0.125, 0.125));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = nn::functional::max_pool2d(relu(nn::functional::conv2d(x.reshape({x.size(0), 1, 8, 8}), conv_w_, conv_b_, 1, 1)), 2);
    return matmul(h.flatten(1), fc_w_) + fc_b_;
  }

 private:
  Tensor conv_w_, conv_b_, fc_w_, fc_b_;
};

/// Linear -> BatchNorm (batch statistics in training, running statistics in eval) -> ReLU -> Linear.
class CoreBNMLP : public nn::Module {
 public:
  CoreBNMLP(int64_t in, int64_t hidden, int64_t out, uint64_t seed) {
    const double s1 = 1.0 / std::sqrt(static_cast<double>(in)), s2 = 1.0 / std::sqrt(static_cast<double>(hidden));
    w1_ = register_parameter("w1", random_input({in, hidden}, seed, -s1, s1));
    gamma_ = register_parameter("gamma", random_input({hidden}, seed + 1, 0.5, 1.5));
    beta_ = register_parameter("beta", random_input({hidden}, seed + 2, -0.5, 0.5));
    w2_ = register_parameter("w2", random_input({hidden, out}, seed + 3, -s2, s2));
    running_mean_ = register_buffer("running_mean", zeros({hidden}));
    running_var_ = register_buffer("running_var", ones({hidden}));
  }
  Tensor forward(const Tensor& x) override {
    nn::functional::BatchNormFuncOptions o;
    o.weight = gamma_;
    o.bias = beta_;
    o.training = is_training();
    return matmul(relu(nn::functional::batch_norm(matmul(x, w1_), running_mean_, running_var_, o)), w2_);
  }

 private:
  Tensor w1_, gamma_, beta_, w2_, running_mean_, running_var_;
};

/// A classification data set: x ~ U[-1, 1) [n, features], one-hot targets [n, classes] from a fixed draw.
struct Data {
  Tensor x, onehot;
  Tensor rows(const Tensor& t, int64_t begin, int64_t end) const { return t.slice(0, begin, end); }
};

inline Data make_data(int64_t n, int64_t features, int64_t classes, uint64_t seed, Device d = Device::cpu()) {
  Data data;
  data.x = random_input({n, features}, seed, -1.0, 1.0, TensorOptions{}.set_device(d));
  std::vector<float> oh(static_cast<size_t>(n * classes), 0.0f);
  for (int64_t i = 0; i < n; ++i) oh[static_cast<size_t>(i * classes + (i * 7 + static_cast<int64_t>(seed)) % classes)] = 1.0f;
  data.onehot = from_vector(oh, {n, classes}, TensorOptions{}.set_device(d));
  return data;
}

/// Mean cross-entropy of logits [b, c] against one-hot targets [b, c].
inline Tensor mean_cross_entropy(const Tensor& logits, const Tensor& onehot) {
  return neg(mean(sum(onehot * log_softmax(logits, 1), {1})));
}

/// An optimizer that applies nothing and records the gradients it is given (grad * grad_scale), so a
/// test sees exactly what an update would use at each window end.
class RecordingOptimizer final : public optim::Optimizer {
 public:
  explicit RecordingOptimizer(std::vector<Tensor> params) : Optimizer({optim::ParamGroup{std::move(params), 0.0, 0.0}}, "Recording") {}
  /// A reading gate is honoured as the fused kernels honour it (read on the host here: a test may sync):
  /// a skipped step records nothing, a clipped one records grad * grad_scale * coefficient.
  void step_gated(double grad_scale, const ember::StepGate& gate) override {
    NoGradGuard ng;
    count_step();
    double coef = 1.0;
    if (gate.status.defined() && gate.read) {
      const auto st = gate.status.to_vector<double>();
      const kernels::GateDecision d = kernels::step_gate_decision(
          st[ember::kStatusSumSquares], st[ember::kStatusNonFinite], gate.clip_norm, gate.skip_non_finite);
      if (d.skip) return;
      if (d.clip) coef = d.clip_coef;
    }
    std::vector<Tensor> g;
    for (const Tensor& p : parameters())
      g.push_back(p.grad().defined() ? p.grad() * grad_scale * coef : zeros_like(p));
    seen.push_back(std::move(g));
  }
  std::vector<std::vector<Tensor>> seen;  ///< per step, per parameter

 protected:
  NamedTensors param_state(size_t) const override { return {}; }
  void set_param_state(size_t, const std::string& slot, const Tensor&) override {
    EMBER_FAIL("RecordingOptimizer has no state slot ", slot);
  }
};

/// The largest per-tensor relative difference: max over tensors t of max_i |a_ti - b_ti| / max(max_i |b_ti|,
/// abs_floor). Each tensor is held to its own scale, so a wrong bias cannot hide behind a large weight; a
/// tensor whose reference is (near) zero, as the exactly-zero gradient of a bias feeding BatchNorm, is
/// compared by absolute error (divided by abs_floor).
inline double max_rel_diff(const std::vector<Tensor>& a, const std::vector<Tensor>& b, double abs_floor = 1e-3) {
  EMBER_CHECK(a.size() == b.size(), "max_rel_diff: ", a.size(), " tensors against ", b.size());
  double worst = 0.0;
  for (size_t t = 0; t < a.size(); ++t) {
    const auto va = a[t].to_vector<double>(), vb = b[t].to_vector<double>();
    EMBER_CHECK(va.size() == vb.size(), "max_rel_diff: tensor ", t, " has ", va.size(), " elements against ", vb.size());
    double diff = 0.0, scale = abs_floor;
    for (size_t i = 0; i < va.size(); ++i) {
      diff = std::max(diff, std::abs(va[i] - vb[i]));
      scale = std::max(scale, std::abs(vb[i]));
    }
    worst = std::max(worst, diff / scale);
  }
  return worst;
}

inline std::vector<Tensor> grads_of(const nn::Module& m) {
  std::vector<Tensor> g;
  for (const Tensor& p : m.parameters()) g.push_back(p.grad().detach().clone());
  return g;
}

inline std::vector<Tensor> values_of(const nn::Module& m) {
  std::vector<Tensor> v;
  for (const Tensor& p : m.parameters()) v.push_back(p.detach().clone());
  return v;
}

/// Copies `from`'s parameters into `to` (same architecture).
inline void copy_parameters(const nn::Module& from, nn::Module& to) {
  NoGradGuard ng;
  auto src = from.parameters(), dst = to.parameters();
  for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
}

}  // namespace ember::test::optim_fixtures
