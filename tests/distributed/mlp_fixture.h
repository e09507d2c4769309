/// @file tests/distributed/mlp_fixture.h @brief A tiny MLP built from core ops, a deterministic sample pool and the accumulation-window loop shared by the single- and multi-rank DataParallel tests.
#pragma once
#include <span>
#include <utility>
#include <vector>

#include "ops/ops.h"
#include "distributed/data_parallel.h"
#include "kernels/accumulate.h"
#include "nn/batchnorm.h"
#include "nn/module.h"
#include "tests/harness/backends.h"

namespace ember::test::dist {

/// 4 -> hidden -> 3 with tanh; parameters registered fc1.weight, fc1.bias, fc2.weight, fc2.bias.
struct Mlp {
  Tensor w1, b1, w2, b2;
  explicit Mlp(uint64_t seed, int64_t hidden = 6, DType dtype = DType::f32) {
    const TensorOptions o = TensorOptions{}.set_dtype(dtype).set_requires_grad(true);
    w1 = random_input(Shape{4, hidden}, seed + 1, -0.5, 0.5, o);
    b1 = random_input(Shape{hidden}, seed + 2, -0.1, 0.1, o);
    w2 = random_input(Shape{hidden, 3}, seed + 3, -0.5, 0.5, o);
    b2 = random_input(Shape{3}, seed + 4, -0.1, 0.1, o);
  }
  NamedTensors named() const {
    return {{"fc1.weight", w1}, {"fc1.bias", b1}, {"fc2.weight", w2}, {"fc2.bias", b2}};
  }
  std::vector<Tensor> params() const { return {w1, b1, w2, b2}; }
  std::vector<Tensor> grads() const { return {w1.grad(), b1.grad(), w2.grad(), b2.grad()}; }
  Tensor forward(const Tensor& x) const { return matmul(tanh(matmul(x, w1) + b1), w2) + b2; }
};

/// The same MLP as an nn::Module (flat parameter names w1, b1, w2, b2), for the accumulator tests.
class MlpModule : public nn::Module {
 public:
  explicit MlpModule(uint64_t seed) {
    Mlp m(seed);
    w1_ = register_parameter("w1", m.w1.detach().clone());
    b1_ = register_parameter("b1", m.b1.detach().clone());
    w2_ = register_parameter("w2", m.w2.detach().clone());
    b2_ = register_parameter("b2", m.b2.detach().clone());
  }
  Tensor forward(const Tensor& x) override { return matmul(tanh(matmul(x, w1_) + b1_), w2_) + b2_; }

 private:
  Tensor w1_, b1_, w2_, b2_;
};

/// 4 -> Linear -> BatchNorm1d(6) -> tanh -> Linear -> BatchNorm1d(3), the MLP's weights: bn1's inputs
/// depend on no batch statistics, bn2's do.
class BnMlp : public nn::Module {
 public:
  BnMlp(uint64_t seed, bool window_stats) {
    Mlp m(seed);
    w1 = register_parameter("w1", m.w1.detach().clone());
    b1 = register_parameter("b1", m.b1.detach().clone());
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm1d>(6, nn::BatchNormOptions{.window_stats = window_stats}));
    w2 = register_parameter("w2", m.w2.detach().clone());
    b2 = register_parameter("b2", m.b2.detach().clone());
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm1d>(3, nn::BatchNormOptions{.window_stats = window_stats}));
  }
  Tensor forward(const Tensor& x) override {
    return bn2->forward(matmul(tanh(bn1->forward(matmul(x, w1) + b1)), w2) + b2);
  }
  Tensor w1, b1, w2, b2;
  std::shared_ptr<nn::BatchNorm1d> bn1, bn2;
};

/// Samples [begin, end) of a fixed pool of 200: inputs [n, 4] and targets [n, 3].
inline Tensor sample_inputs(int64_t begin, int64_t end, DType dtype = DType::f32) {
  static const Tensor pool = random_input(Shape{200, 4}, 11, -1.0, 1.0);
  return pool.slice(0, begin, end).contiguous().clone().to(dtype);
}
inline Tensor sample_targets(int64_t begin, int64_t end, DType dtype = DType::f32) {
  static const Tensor pool = random_input(Shape{200, 3}, 12, -1.0, 1.0);
  return pool.slice(0, begin, end).contiguous().clone().to(dtype);
}

/// Mean over the batch of the per-sample squared error.
inline Tensor loss_mean(const Mlp& m, int64_t begin, int64_t end, DType dtype = DType::f32) {
  Tensor d = m.forward(sample_inputs(begin, end, dtype)) - sample_targets(begin, end, dtype);
  return sum(d * d) * (1.0 / static_cast<double>(end - begin));
}

using Range = std::pair<int64_t, int64_t>;

/// One accumulation window as the accumulation data path (docs/accumulation.md) runs it: each micro-batch's mean loss is seeded
/// with its count (grads accumulate sums), the hook learns which backward is the window's last, then
/// reduce() and the exact 1/total scale. Returns the global sample count.
inline int64_t run_window(Mlp& m, distributed::DataParallel* dp, const std::vector<Range>& micro,
                          DType dtype = DType::f32) {
  int64_t local = 0;
  for (size_t i = 0; i < micro.size(); ++i) {
    const auto [b, e] = micro[i];
    if (dp) dp->before_backward(i + 1 == micro.size());
    loss_mean(m, b, e, dtype).backward(full(Shape{}, static_cast<double>(e - b), TensorOptions{}.set_dtype(dtype)));
    local += e - b;
  }
  std::vector<Tensor> grads = m.grads();
  const int64_t total = dp ? dp->reduce(grads, local) : local;
  kernels::scale_many(std::span<Tensor>(grads), 1.0 / static_cast<double>(total));
  return total;
}

/// Plain SGD on the mean gradients, then zero the gradients in place (buffers kept).
inline void sgd_step(Mlp& m, double lr) {
  NoGradGuard ng;
  for (Tensor& p : m.params()) {
    Tensor w = p.detach();
    w.copy_(w - p.grad() * lr);
    Tensor g = p.grad();
    g.zero_();
  }
}

}  // namespace ember::test::dist
