/// @file tests/core/test_autograd.cpp @brief Autograd semantics: in-place leaf accumulation, retain_graph, NoGradGuard, detach, seeds, diamonds, view backward.
#include <catch2/catch.hpp>

#include "ops/autograd/node.h"
#include "tests/harness/backends.h"

using namespace ember;
using Catch::Matchers::Contains;

namespace {
Tensor leaf(const std::vector<float>& v, const Shape& s) {
  return from_vector(v, s, TensorOptions{}.set_requires_grad(true));
}
std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }
}  // namespace

TEST_CASE("leaf gradients accumulate in place across backward calls", "[core][autograd]") {
  Tensor w = leaf({1, 2, 3}, {3});
  Tensor x1 = from_vector(std::vector<float>{1, 1, 1}, {3});
  Tensor x2 = from_vector(std::vector<float>{2, 0, -1}, {3});
  sum(w * x1).backward();
  REQUIRE(w.grad().defined());
  void* const storage = w.grad().data_ptr();
  CHECK(values(w.grad()) == std::vector<float>{1, 1, 1});
  sum(w * x2).backward();  // the second micro-batch adds into the same buffer
  CHECK(w.grad().data_ptr() == storage);
  CHECK(values(w.grad()) == std::vector<float>{3, 1, 0});
  // The leaf's grad is a plain tensor: no history, and in-place ops on it are allowed.
  CHECK_FALSE(w.grad().requires_grad());
  CHECK(w.is_leaf());
  w.grad().zero_();
  sum(w * x1).backward();
  CHECK(w.grad().data_ptr() == storage);
  CHECK(values(w.grad()) == std::vector<float>{1, 1, 1});
}

TEST_CASE("retain_graph allows a second backward; without it the second backward throws", "[core][autograd]") {
  Tensor x = leaf({0.5f, -1.0f}, {2});
  Tensor y = sum(exp(x) * x);
  y.backward(Tensor(), /*retain_graph=*/true);
  const auto once = values(x.grad());
  y.backward();  // graph retained from the first call; this one frees it
  const auto twice = values(x.grad());
  for (size_t i = 0; i < once.size(); ++i) CHECK(twice[i] == Approx(2 * once[i]).epsilon(1e-6));
  CHECK_THROWS_WITH(y.backward(), Contains("already freed") && Contains("retain_graph"));
  // An intermediate shared with a freed graph is freed too.
  Tensor z = exp(x);
  Tensor a = sum(z);
  Tensor b = sum(z * 2.0);
  a.backward();
  CHECK_THROWS_WITH(b.backward(), Contains("already freed"));
}

TEST_CASE("NoGradGuard records nothing; detach cuts history and shares storage", "[core][autograd]") {
  Tensor x = leaf({1, 2}, {2});
  {
    NoGradGuard ng;
    CHECK_FALSE(GradMode::is_enabled());
    Tensor y = x * x + exp(x);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    {
      NoGradGuard nested;
    }
    CHECK_FALSE(GradMode::is_enabled());  // restored to the outer guard's state
  }
  CHECK(GradMode::is_enabled());
  Tensor y = x * 3.0;
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  REQUIRE(y.grad_fn() != nullptr);
  CHECK(y.grad_fn()->name() == "mul_scalarBackward");
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.data_ptr() == y.data_ptr());
  Tensor z = sum(d * x);  // gradient flows to x only through the second factor
  z.backward();
  CHECK(values(x.grad()) == std::vector<float>{3, 6});
  CHECK_THROWS_WITH(sum(d).backward(), Contains("does not require grad"));
}

TEST_CASE("requires_grad can only be set on floating leaves", "[core][autograd]") {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH(y.set_requires_grad(false), Contains("leaf") && Contains("mul_scalarBackward"));
  CHECK_THROWS_WITH(arange(3, TensorOptions{}.set_dtype(DType::i64)).set_requires_grad(true),
                    Contains("floating") && Contains("i64[3]"));
  Tensor plain = ones({2});
  plain.set_requires_grad(true);
  CHECK(plain.requires_grad());
  plain.set_requires_grad(false);
  CHECK_FALSE(plain.requires_grad());
}

TEST_CASE("backward seeds: scalar default, non-scalar needs a seed of the output's shape", "[core][autograd]") {
  Tensor x = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor y = x * x;
  CHECK_THROWS_WITH(y.backward(), Contains("seed") && Contains("f32[2, 3]"));
  CHECK_THROWS_WITH(y.backward(ones({3, 2})), Contains("[3, 2]") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(y.backward(ones({2, 3}, TensorOptions{}.set_dtype(DType::f64))), Contains("f64") && Contains("f32"));
  const Tensor seed = from_vector(std::vector<float>{1, 0, -1, 2, 0.5f, 0}, {2, 3});
  y.backward(seed);
  CHECK(values(x.grad()) == std::vector<float>{2, 0, -6, 16, 5, 0});
  // A one-element non-0-dim output needs no seed either.
  Tensor w = leaf({3}, {1});
  (w * w).backward();
  CHECK(values(w.grad()) == std::vector<float>{6});
}

TEST_CASE("a tensor used along several paths receives the sum of their gradients", "[core][autograd]") {
  SECTION("diamond through two nodes") {
    Tensor x = leaf({1, 2}, {2});
    Tensor a = x * 2.0, b = exp(x);
    sum(a * b).backward();  // d/dx (2x e^x) = 2 e^x (1 + x)
    const auto g = values(x.grad());
    CHECK(g[0] == Approx(2 * std::exp(1.0) * 2));
    CHECK(g[1] == Approx(2 * std::exp(2.0) * 3));
  }
  SECTION("the same tensor twice in one op, and a seed that must not be overwritten") {
    Tensor x = leaf({1, 2}, {2});
    Tensor y = x + x;
    const Tensor seed = from_vector(std::vector<float>{1, 10}, {2});
    y.backward(seed);
    CHECK(values(x.grad()) == std::vector<float>{2, 20});
    CHECK(values(seed) == std::vector<float>{1, 10});  // the engine sums into its own buffer
  }
  SECTION("through views: two slices of one leaf and a broadcast") {
    Tensor x = leaf({1, 2, 3, 4}, {4});
    Tensor lo = x.slice(0, 0, 2), hi = x.slice(0, 2, 4);
    Tensor y = sum(lo * hi) + sum(x.unsqueeze(0).expand({3, 4}));
    y.backward();
    CHECK(values(x.grad()) == std::vector<float>{3 + 3, 4 + 3, 1 + 3, 2 + 3});
  }
}

TEST_CASE("backward through views, copies and dtype/device moves", "[core][autograd]") {
  Tensor x = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  // x.t() = [[1,4],[2,5],[3,6]] -> flat [1,4,2,5,3,6] -> every other from index 1: [4,5,6] = row 1 of x.
  Tensor y = x.t().contiguous().reshape({6}).slice(0, 1, 6, 2);
  CHECK(values(y) == std::vector<float>{4, 5, 6});
  Tensor z = sum(y * from_vector(std::vector<float>{1, 2, 3}, {3}));
  z.backward();
  CHECK(values(x.grad()) == std::vector<float>{0, 0, 0, 1, 2, 3});

  Tensor a = leaf({1, 2}, {2});
  Tensor b = a.to(DType::f64);
  CHECK(b.requires_grad());
  sum(b * b).backward();
  CHECK(a.grad().dtype() == DType::f32);
  CHECK(values(a.grad()) == std::vector<float>{2, 4});

  Tensor m = leaf({1, 5, 3, 2, 2, 7}, {2, 3});
  Tensor mx = max(m, 1);  // keepdim = false: [5, 7]; gradient to the first argmax of each row
  sum(mx * from_vector(std::vector<float>{2, 3}, {2})).backward();
  CHECK(values(m.grad()) == std::vector<float>{0, 2, 0, 0, 0, 3});
  CHECK(argmax(m, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 2});
}

TEST_CASE("a leaf's first gradient becomes its .grad without aliasing anything else", "[core][autograd]") {
  // a + b hands the same gradient tensor to both leaves: at most one may take it over, the other
  // gets a copy, so an in-place change of one .grad leaves the other alone.
  Tensor a = leaf({1, 2, 3}, {3}), b = leaf({4, 5, 6}, {3});
  sum((a + b) * from_vector(std::vector<float>{1, 2, 3}, {3})).backward();
  REQUIRE(a.grad().defined());
  REQUIRE(b.grad().defined());
  CHECK(a.grad().data_ptr() != b.grad().data_ptr());
  a.grad().fill_(0.0);
  CHECK(values(b.grad()) == std::vector<float>{1, 2, 3});
  // A seed the caller still holds is copied, not adopted: changing it later leaves .grad alone.
  Tensor w = leaf({1, 1}, {2});
  Tensor seed = from_vector(std::vector<float>{0.5f, 2.0f}, {2});
  w.backward(seed);
  CHECK(w.grad().data_ptr() != seed.data_ptr());
  seed.fill_(7.0);
  CHECK(values(w.grad()) == std::vector<float>{0.5f, 2.0f});
  // A second backward adds into the adopted buffer in place.
  void* const storage = a.grad().data_ptr();
  sum(a * from_vector(std::vector<float>{1, 1, 1}, {3})).backward();
  CHECK(a.grad().data_ptr() == storage);
  CHECK(values(a.grad()) == std::vector<float>{1, 1, 1});
}

TEST_CASE("leaves ready together are accumulated in one batch; hooks fire once each, in order", "[core][autograd]") {
  // p * q yields both leaves' gradients at once (one batch); the hooks see the accumulated values.
  Tensor p = leaf({1, 2}, {2}), q = leaf({3, 4}, {2});
  std::vector<std::string> fired;
  const uint64_t hp = add_post_accumulate_grad_hook(p, [&](const Tensor& t) {
    fired.push_back("p:" + std::to_string(t.grad().to_vector<float>()[1]));
  });
  const uint64_t hq = add_post_accumulate_grad_hook(q, [&](const Tensor& t) {
    fired.push_back("q:" + std::to_string(t.grad().to_vector<float>()[1]));
  });
  sum(p * q).backward();
  sum(p * q).backward();
  CHECK(values(p.grad()) == std::vector<float>{6, 8});  // 2 * q
  CHECK(values(q.grad()) == std::vector<float>{2, 4});  // 2 * p
  // The queue runs the later-created sink (q's, recorded second) first, as before batching; each hook
  // sees its own leaf's accumulated value.
  CHECK(fired == std::vector<std::string>{"q:2.000000", "p:4.000000", "q:4.000000", "p:8.000000"});
  remove_post_accumulate_grad_hook(p, hp);
  remove_post_accumulate_grad_hook(q, hq);
}
