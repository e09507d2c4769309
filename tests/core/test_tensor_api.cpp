/// @file tests/core/test_tensor_api.cpp @brief libtorch-style conveniences: from_vector with a braced list, the op methods (x.sum(), x.mean(), ...), an optimizer built before model.to(device).
#include <catch2/catch.hpp>
#include <cmath>

#include "tests/harness/backends.h"
#include "nn/nn.h"
#include "ops/ops.h"
#include "optim/optim.h"

using namespace ember;

TEST_CASE("from_vector takes a braced list of numbers, in any dtype", "[core]") {
  const Tensor a = from_vector({1, 2, 3, 4}, {2, 2});
  CHECK(a.dtype() == DType::f32);
  CHECK(a.to_vector<float>() == std::vector<float>{1, 2, 3, 4});
  const Tensor b = from_vector({0.5, -1.25}, {2}, TensorOptions{}.set_dtype(DType::f64));
  CHECK(b.to_vector<double>() == std::vector<double>{0.5, -1.25});
  const Tensor c = from_vector({3, 1, 2}, {3}, TensorOptions{}.set_dtype(DType::i64));
  CHECK(c.to_vector<int64_t>() == std::vector<int64_t>{3, 1, 2});
  CHECK_THROWS_WITH(from_vector({1, 2, 3}, {2, 2}), Catch::Matchers::Contains("3 values do not fill shape [2, 2]"));
}

TEST_CASE("Tensor op methods compute what their definitions say (hand-computed values)", "[core]") {
  const TensorOptions f64 = TensorOptions{}.set_dtype(DType::f64);
  const Tensor x = from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, f64);
  CHECK(x.sum().item() == 21.0);
  CHECK(x.mean().item() == 3.5);
  CHECK(x.sum({0}).to_vector<double>() == std::vector<double>{5, 7, 9});
  CHECK(x.mean({1}, true).shape() == Shape{2, 1});
  CHECK(x.mean({1}).to_vector<double>() == std::vector<double>{2, 5});
  CHECK(x.max(1).to_vector<double>() == std::vector<double>{3, 6});
  CHECK(x.argmax(0).to_vector<int64_t>() == std::vector<int64_t>{1, 1, 1});
  CHECK(x.pow(2.0).sum().item() == 91.0);
  CHECK(x.exp().to_vector<double>()[2] == Approx(std::exp(3.0)).epsilon(1e-15));
  CHECK(x.log().to_vector<double>()[3] == Approx(std::log(4.0)).epsilon(1e-15));
  CHECK((x - 3.0).relu().to_vector<double>() == std::vector<double>{0, 0, 0, 1, 2, 3});
  CHECK(x.sigmoid().to_vector<double>()[0] == Approx(1.0 / (1.0 + std::exp(-1.0))).epsilon(1e-15));
  CHECK(x.tanh().to_vector<double>()[1] == Approx(std::tanh(2.0)).epsilon(1e-15));
  // [[1,2,3],[4,5,6]] @ [[1],[0],[-1]] = [[-2],[-2]]
  CHECK(x.matmul(from_vector({1, 0, -1}, {3, 1}, f64)).to_vector<double>() == std::vector<double>{-2, -2});
  const std::vector<double> sm = x.softmax(1).to_vector<double>();
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  CHECK(sm[0] == Approx(std::exp(1.0) / z).epsilon(1e-14));
  CHECK(x.log_softmax(1).to_vector<double>()[5] == Approx(6.0 - std::log(std::exp(4.0) + std::exp(5.0) + std::exp(6.0))).epsilon(1e-14));
  // Methods are the differentiable ops: d(sum(x^2))/dx = 2x.
  Tensor w = from_vector({1, -2}, {2}, f64).set_requires_grad(true);
  w.pow(2.0).sum().backward();
  CHECK(w.grad().to_vector<double>() == std::vector<double>{2, -4});
}

TEST_CASE("an optimizer built before model.to(device) updates the moved parameters", "[optim][cuda]") {
  if (!test::cuda_or_warn()) return;
  // Reference: the same model, data and SGD (momentum) step, entirely on the CPU.
  auto make = [] {
    manual_seed(11);
    return std::make_shared<nn::Linear>(3, 2);
  };
  const Tensor x = from_vector({0.5, -1, 2, 1.5, 0.25, -0.75}, {2, 3});
  auto ref = make();
  optim::SGD ref_opt(ref->parameters(), optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
  for (int step = 0; step < 2; ++step) {
    ref_opt.zero_grad();
    ref->forward(x).pow(2.0).sum().backward();
    ref_opt.step();
  }
  auto model = make();
  optim::SGD opt(model->parameters(), optim::SGDOptions{.lr = 0.1, .momentum = 0.9});  // built on the CPU
  model->to(Device::cuda(0));
  CHECK(opt.device() == Device::cuda(0));
  const Tensor xd = x.to(Device::cuda(0));
  for (int step = 0; step < 2; ++step) {
    opt.zero_grad();
    model->forward(xd).pow(2.0).sum().backward();
    opt.step();
  }
  // f32 GEMMs on two backends: a few ulps of the values (|w| < 1) after two steps.
  const auto got = model->weight.to(Device::cpu()).to_vector<float>();
  const auto want = ref->weight.to_vector<float>();
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-5));
}
