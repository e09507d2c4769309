/// @file tests/nn/test_linear.cpp @brief Linear: forward/backward vs a matmul reference, finite differences, the fused weight-gradient GEMM, default init.
#include <catch2/catch.hpp>

#include <cmath>

#include "nn/nn.h"
#include "tests/harness/backends.h"

using namespace ember;
namespace F = ember::nn::functional;

TEST_CASE("linear matches x @ W^T + b, forward and backward, on every device", "[nn][cuda]") {
  for (Device d : test::devices()) {
    Tensor x = test::random_input({5, 7}, 1, -1, 1, TensorOptions{}.set_device(d).set_requires_grad(true));
    Tensor w = test::random_input({3, 7}, 2, -1, 1, TensorOptions{}.set_device(d).set_requires_grad(true));
    Tensor b = test::random_input({3}, 3, -1, 1, TensorOptions{}.set_device(d).set_requires_grad(true));
    Tensor seed = test::random_input({5, 3}, 4, -1, 1, TensorOptions{}.set_device(d));
    F::linear(x, w, b).backward(seed);
    Tensor xr = x.detach().to(Device::cpu()).clone(), wr = w.detach().to(Device::cpu()).clone(),
           br = b.detach().to(Device::cpu()).clone();
    for (Tensor* t : {&xr, &wr, &br}) t->set_requires_grad(true);
    Tensor yr = matmul(xr, wr.t()) + br;
    yr.backward(seed.to(Device::cpu()));
    std::string why;
    // Sums of 7 (forward) or 5 (weight grad) float products: relative 1e-5 covers the reordering.
    CHECK(test::allclose(F::linear(x, w, b).detach().to(Device::cpu()), yr.detach(), 1e-5, 1e-6, &why));
    CHECK(test::allclose(x.grad().to(Device::cpu()), xr.grad(), 1e-5, 1e-6, &why));
    CHECK(test::allclose(w.grad().to(Device::cpu()), wr.grad(), 1e-5, 1e-6, &why));
    CHECK(test::allclose(b.grad().to(Device::cpu()), br.grad(), 1e-5, 1e-6, &why));
    INFO(d.str() << ": " << why);
  }
}

TEST_CASE("linear gradients agree with finite differences in f64", "[nn]") {
  const TensorOptions f64 = TensorOptions{}.set_dtype(DType::f64);
  auto f = [](const std::vector<Tensor>& in) { return sum(tanh(F::linear(in[0], in[1], in[2]))); };
  // Central differences with eps 1e-6 in f64: truncation ~eps^2, rounding ~1e-16/eps = 1e-10.
  CHECK(test::gradcheck(f, {test::random_input({4, 6}, 5, -1, 1, f64), test::random_input({3, 6}, 6, -1, 1, f64),
                            test::random_input({3}, 7, -1, 1, f64)}) < 1e-6);
}

TEST_CASE("the weight gradient GEMM accumulates straight into .grad", "[nn]") {
  manual_seed(3);
  nn::Linear fc(6, 4);
  std::vector<Tensor> xs;
  for (uint64_t i = 0; i < 3; ++i) xs.push_back(test::random_input({5, 6}, 10 + i));
  const void* ptr = nullptr;
  for (const Tensor& x : xs) {
    sum(fc(x) * fc(x)).backward();
    if (!ptr) ptr = fc.weight.grad().data_ptr();
    CHECK(fc.weight.grad().data_ptr() == ptr);  // no reallocation per micro-batch
  }
  // Reference: the same three backward passes through an unfused matmul on copies of the parameters.
  Tensor w = fc.weight.detach().clone(), b = fc.bias.detach().clone();
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  for (const Tensor& x : xs) {
    Tensor y = matmul(x, w.t()) + b;
    sum(y * y).backward();
  }
  std::string why;
  CHECK(test::allclose(fc.weight.grad(), w.grad(), 1e-5, 1e-6, &why));
  CHECK(test::allclose(fc.bias.grad(), b.grad(), 1e-5, 1e-6, &why));
  INFO(why);
}

TEST_CASE("Linear uses PyTorch's default init bounds and is reproducible from the seed", "[nn]") {
  manual_seed(42);
  nn::Linear a(100, 20);
  manual_seed(42);
  nn::Linear b(100, 20);
  CHECK(a.weight.to_vector<float>() == b.weight.to_vector<float>());
  const double bound = 1.0 / std::sqrt(100.0);  // kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in))
  double maxabs = 0;
  for (float v : a.weight.to_vector<float>()) maxabs = std::max(maxabs, std::abs(static_cast<double>(v)));
  CHECK(maxabs <= bound);
  CHECK(maxabs > 0.9 * bound);  // 2000 uniform draws reach the top 10% of the range
  for (float v : a.bias.to_vector<float>()) CHECK(std::abs(v) <= bound);
}

TEST_CASE("Linear rejects inputs of the wrong shape naming both", "[nn]") {
  nn::Linear fc(784, 512);
  CHECK_THROWS_WITH(fc(zeros({32, 100})), Catch::Contains("[N, 784]") && Catch::Contains("[32, 100]"));
  CHECK_THROWS_WITH(nn::Linear(0, 3), Catch::Contains("in=0"));
}
