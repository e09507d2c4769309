/// @file tests/core/test_random.cpp @brief rand/randn: reproducible from a seed, counter-based (draws split and advance exactly), statistically right, identical on CPU and CUDA.
#include <catch2/catch.hpp>

#include <cmath>

#include "tests/harness/backends.h"

using namespace ember;
using Catch::Matchers::Contains;

namespace {

struct Moments {
  double mean = 0.0, var = 0.0, min = 0.0, max = 0.0;
};

Moments moments(const Tensor& t) {
  const auto v = t.to_vector<double>();
  Moments m{0.0, 0.0, v[0], v[0]};
  for (double x : v) {
    m.mean += x;
    m.min = std::min(m.min, x);
    m.max = std::max(m.max, x);
  }
  m.mean /= static_cast<double>(v.size());
  for (double x : v) m.var += (x - m.mean) * (x - m.mean);
  m.var /= static_cast<double>(v.size() - 1);
  return m;
}

}  // namespace

TEST_CASE("rand/randn are reproducible from a seed and advance the generator", "[core][random]") {
  manual_seed(42);
  const auto a = rand({1000}).to_vector<float>();
  const auto b = randn({3, 5}).to_vector<float>();
  manual_seed(42);
  CHECK(rand({1000}).to_vector<float>() == a);
  CHECK(randn({3, 5}).to_vector<float>() == b);
  CHECK(default_generator().offset == 1000 + 16);  // each draw advances by numel rounded up to 4

  Generator g(7);
  const auto first = rand({6}, {}, &g).to_vector<float>();
  CHECK(g.offset == 8);
  const auto second = rand({6}, {}, &g).to_vector<float>();
  CHECK(g.offset == 16);
  CHECK(first != second);
  CHECK(Generator(8).seed != g.seed);
  Generator other(8);
  CHECK(rand({6}, {}, &other).to_vector<float>() != first);  // another seed, another stream
}

TEST_CASE("draws are counter-based: one draw of 8 equals two draws of 4 from the same seed", "[core][random]") {
  for (const bool normal : {false, true}) {
    Generator whole(123), parts(123);
    auto draw = [normal](const Shape& s, Generator* g) { return normal ? randn(s, {}, g) : rand(s, {}, g); };
    const auto all = draw({8}, &whole).to_vector<float>();
    const auto p1 = draw({4}, &parts).to_vector<float>();
    const auto p2 = draw({2, 2}, &parts).to_vector<float>();
    CHECK(std::vector<float>(all.begin(), all.begin() + 4) == p1);
    CHECK(std::vector<float>(all.begin() + 4, all.end()) == p2);
    // f64 tensors hold the same draws (computed in float, then widened).
    Generator g64(123);
    const TensorOptions f64 = TensorOptions{}.set_dtype(DType::f64);
    const auto d = (normal ? randn({8}, f64, &g64) : rand({8}, f64, &g64)).to_vector<double>();
    for (size_t i = 0; i < all.size(); ++i) CHECK(d[i] == static_cast<double>(all[i]));
  }
}

TEST_CASE("rand and randn have the right mean and variance (1e6 draws, 5-sigma bounds)", "[core][random]") {
  const int64_t n = 1000000;
  const double root_n = std::sqrt(static_cast<double>(n));
  Generator g(2024);
  SECTION("U[0,1)") {
    const Moments m = moments(rand({n}, {}, &g));
    // mean: sigma = sqrt(1/12)/sqrt(n) = 2.9e-4. variance: sigma = sqrt((mu4 - sigma^4)/n) with
    // mu4 = 1/80, sigma^4 = 1/144, i.e. 7.5e-5. A correct generator fails a 5-sigma bound with
    // probability ~6e-7; a biased transform (e.g. a lost bit, [0,2^-8) steps) is far outside.
    CHECK(std::abs(m.mean - 0.5) < 5 * std::sqrt(1.0 / 12) / root_n);
    CHECK(std::abs(m.var - 1.0 / 12) < 5 * std::sqrt(1.0 / 80 - 1.0 / 144) / root_n);
    CHECK(m.min >= 0.0);
    CHECK(m.max < 1.0);
  }
  SECTION("N(0,1)") {
    const Moments m = moments(randn({n}, {}, &g));
    // mean: sigma = 1/sqrt(n) = 1e-3; variance: sigma = sqrt(2/n) = 1.4e-3.
    CHECK(std::abs(m.mean) < 5 / root_n);
    CHECK(std::abs(m.var - 1.0) < 5 * std::sqrt(2.0) / root_n);
    CHECK(std::isfinite(m.min));
    CHECK(std::isfinite(m.max));
    CHECK(m.max > 4.0);  // P(max of 1e6 normals < 4) = (1 - 3.2e-5)^1e6 ~ e^-32
  }
  SECTION("uniform_(low, high) and normal_(mean, std) scale the draws") {
    Tensor u = empty({n});
    uniform_(u, -3.0, 5.0, &g);
    const Moments mu = moments(u);
    CHECK(std::abs(mu.mean - 1.0) < 5 * 8 * std::sqrt(1.0 / 12) / root_n);
    CHECK(mu.min >= -3.0);
    CHECK(mu.max < 5.0);
    Tensor z = empty({n});
    normal_(z, 2.0, 0.5, &g);
    const Moments mz = moments(z);
    CHECK(std::abs(mz.mean - 2.0) < 5 * 0.5 / root_n);
    CHECK(std::abs(mz.var - 0.25) < 5 * 0.25 * std::sqrt(2.0) / root_n);
  }
}

TEST_CASE("random fills of a non-contiguous view and bad parameters", "[core][random]") {
  Tensor base = zeros({4, 6});
  Tensor cols = base.slice(1, 0, 6, 2);
  Generator g(5);
  uniform_(cols, 1.0, 2.0, &g);
  const auto v = base.to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) CHECK((i % 2 == 0 ? (v[i] >= 1.0f && v[i] < 2.0f) : v[i] == 0.0f));
  CHECK_THROWS_WITH(uniform_(base, 2.0, 1.0), Contains("low 2") && Contains("high 1"));
  CHECK_THROWS_WITH(normal_(base, 0.0, -1.0), Contains("std") && Contains("-1"));
  CHECK_THROWS_WITH(rand({2}, TensorOptions{}.set_dtype(DType::i64)), Contains("i64"));
}

TEST_CASE("CPU and CUDA draw bitwise identical numbers", "[core][random][cuda]") {
  if (!test::has_cuda()) {
    WARN("no CUDA device: CPU/CUDA draw comparison not run");
    return;
  }
  for (const int64_t n : {1, 31, 33, 4099}) {
    INFO("n = " << n);
    Generator gc(99), gd(99);
    CHECK(rand({n}, {}, &gc).to_vector<float>() == rand({n}, TensorOptions{}.set_device(Device::cuda(0)), &gd).to_vector<float>());
    CHECK(randn({n}, {}, &gc).to_vector<float>() ==
          randn({n}, TensorOptions{}.set_device(Device::cuda(0)), &gd).to_vector<float>());
    CHECK(gc.offset == gd.offset);
  }
}
