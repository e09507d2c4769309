/// @file tests/nn/test_losses.cpp @brief cross_entropy / mse_loss / dropout ops: hand-computed values, references, finite differences, errors.
#include <catch2/catch.hpp>

#include <cmath>

#include "kernels/dropout.h"
#include "nn/nn.h"
#include "tests/harness/backends.h"

using namespace ember;
namespace F = ember::nn::functional;

TEST_CASE("cross_entropy of a tiny case equals the hand-computed value", "[nn]") {
  Tensor logits = from_vector(std::vector<float>{1, 2, 3, 1, 1, 1}, {2, 3});
  Tensor targets = from_vector(std::vector<int64_t>{2, 0}, {2}, TensorOptions{}.set_dtype(DType::i64));
  const double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;
  const double l1 = std::log(3.0);
  CHECK(F::cross_entropy(logits, targets).item() == Approx((l0 + l1) / 2).epsilon(1e-6));
  CHECK(F::cross_entropy(logits, targets, F::Reduction::Sum).item() == Approx(l0 + l1).epsilon(1e-6));
}

TEST_CASE("cross_entropy matches log_softmax + pick on every device, with gradients", "[nn][cuda]") {
  const int64_t n = 33, c = 10;
  std::vector<int64_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = (i * 7) % c;
  Tensor ref_logits = test::random_input({n, c}, 9, -3, 3, TensorOptions{}.set_requires_grad(true));
  Tensor onehot = zeros({n, c});
  {
    auto* p = onehot.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i * c + t[static_cast<size_t>(i)]] = 1.0f;
  }
  Tensor ref = neg(sum(log_softmax(ref_logits, 1) * onehot)) / static_cast<double>(n);
  ref.backward();
  for (Device d : test::devices()) {
    Tensor logits = ref_logits.detach().to(d);
    logits.set_requires_grad(true);
    Tensor targets = from_vector(t, {n}, TensorOptions{}.set_dtype(DType::i64).set_device(d));
    Tensor loss = F::cross_entropy(logits, targets);
    loss.backward();
    CHECK(loss.item() == Approx(ref.item()).epsilon(1e-5));
    std::string why;
    CHECK(test::allclose(logits.grad().to(Device::cpu()), ref_logits.grad(), 1e-5, 1e-7, &why));
    INFO(d.str() << ": " << why);
  }
}

TEST_CASE("cross_entropy gradients agree with finite differences in f64", "[nn]") {
  Tensor targets = from_vector(std::vector<int64_t>{0, 3, 1}, {3}, TensorOptions{}.set_dtype(DType::i64));
  auto f = [&](const std::vector<Tensor>& in) { return F::cross_entropy(in[0], targets, F::Reduction::Sum); };
  CHECK(test::gradcheck(f, {test::random_input({3, 4}, 11, -2, 2, TensorOptions{}.set_dtype(DType::f64))}) < 1e-6);
}

TEST_CASE("cross_entropy rejects bad targets and shapes naming them", "[nn]") {
  Tensor logits = randn({2, 3});
  auto i64 = TensorOptions{}.set_dtype(DType::i64);
  CHECK_THROWS_WITH(F::cross_entropy(logits, from_vector(std::vector<int64_t>{0, 3}, {2}, i64)),
                    Catch::Contains("3") && Catch::Contains("C"));
  CHECK_THROWS_WITH(F::cross_entropy(logits, from_vector(std::vector<int64_t>{-1, 0}, {2}, i64)),
                    Catch::Contains("-1"));
  CHECK_THROWS_WITH(F::cross_entropy(logits, zeros({2})), Catch::Contains("i64"));
  CHECK_THROWS_WITH(F::cross_entropy(randn({2}), zeros({2}, i64)), Catch::Contains("[N, C]"));
}

TEST_CASE("mse_loss and its gradient", "[nn]") {
  Tensor a = from_vector(std::vector<float>{1, 2, 3}, {3}, TensorOptions{}.set_requires_grad(true));
  Tensor b = from_vector(std::vector<float>{0, 2, 5}, {3});
  Tensor l = F::mse_loss(a, b);
  CHECK(l.item() == Approx((1.0 + 0.0 + 4.0) / 3));
  l.backward();
  CHECK(a.grad().to_vector<float>() == std::vector<float>{2.0f / 3, 0.0f, -4.0f / 3});
  CHECK_THROWS_WITH(F::mse_loss(a, zeros({2})), Catch::Contains("[3]") && Catch::Contains("[2]"));
}

TEST_CASE("dropout is reproducible, mean-preserving and the identity in eval mode", "[nn]") {
  Tensor x = ones({100000});
  Generator g1(5), g2(5);
  Tensor y1 = F::dropout(x, 0.3, true, &g1), y2 = F::dropout(x, 0.3, true, &g2);
  CHECK(y1.to_vector<float>() == y2.to_vector<float>());
  const auto v = y1.to_vector<float>();
  int64_t kept = 0;
  for (float e : v) {
    if (e != 0.0f) {
      ++kept;
      CHECK(e == Approx(1.0 / 0.7).epsilon(1e-6));
    }
  }
  // Binomial(1e5, 0.7): sd = sqrt(1e5 * 0.21) = 145; 5 sd = 725 around 70000.
  CHECK(std::abs(kept - 70000) < 725);
  nn::Dropout layer(0.5);
  layer.eval();
  CHECK(layer(x).is_same(x));
  CHECK_THROWS_WITH(nn::Dropout(1.0), Catch::Contains("p must be in [0, 1)"));
}

TEST_CASE("dropout backward applies the forward's mask", "[nn]") {
  Tensor x = test::random_input({1000}, 12, 0.5, 1.5, TensorOptions{}.set_requires_grad(true));
  Generator g(9);
  Tensor y = F::dropout(x, 0.5, true, &g);
  y.backward(ones({1000}));
  const auto yv = y.to_vector<float>(), gv = x.grad().to_vector<float>();
  for (size_t i = 0; i < yv.size(); ++i) CHECK((yv[i] == 0.0f) == (gv[i] == 0.0f));
}

TEST_CASE("dropout keeps the same elements on every device, forward and backward", "[nn][cuda]") {
  // 1000003 elements: odd, so the last Philox group is partial; offset 6 starts mid-group.
  const int64_t n = 1000003;
  Tensor x = test::random_input({n}, 21, -2, 2);
  Tensor ref = empty({n});
  kernels::dropout(x, ref, 0.25, 77, 6);
  for (Device d : test::devices()) {
    Tensor xd = x.to(d), yd = empty({n}, TensorOptions{}.set_device(d));
    kernels::dropout(xd, yd, 0.25, 77, 6);
    INFO(d.str());
    CHECK(yd.to(Device::cpu()).to_vector<float>() == ref.to_vector<float>());
    // Through autograd: the backward of ones() is the mask times 1 / (1 - p).
    Tensor xg = xd.detach();
    xg.set_requires_grad(true);
    Generator g(31);
    Tensor y = F::dropout(xg, 0.5, true, &g);
    y.backward(ones({n}, TensorOptions{}.set_device(d)));
    const auto yv = y.to(Device::cpu()).to_vector<float>(), gv = xg.grad().to(Device::cpu()).to_vector<float>();
    int64_t mismatched = 0;
    for (size_t i = 0; i < yv.size(); ++i)
      mismatched += (yv[i] == 0.0f) != (gv[i] == 0.0f) || (gv[i] != 0.0f && gv[i] != 2.0f);
    CHECK(mismatched == 0);
  }
  CHECK_THROWS_WITH(kernels::dropout(x, ref, 1.0, 1, 0), Catch::Contains("p must be in [0, 1)"));
  Tensor wrong = empty({n - 1});
  CHECK_THROWS_WITH(kernels::dropout(x, wrong, 0.5, 1, 0), Catch::Contains("[1000003]") && Catch::Contains("[1000002]"));
}
