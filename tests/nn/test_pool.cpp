/// @file tests/nn/test_pool.cpp @brief functional::max_pool2d and the pooling kernels: direct reference, argmax routing of gradients, finite differences, CUDA vs CPU, errors.
#include <catch2/catch.hpp>

#include <cmath>

#include "kernels/pool.h"
#include "nn/functional.h"
#include "tests/kernels/cuda_test_util.h"
#include "tests/nn/conv_reference.h"

using namespace ember;
using ember::test::random_input;
using ember::test::nnconv::check_close;
using ember::test::nnconv::kF64;
using ember::test::nnconv::naive_max_pool2d;
using Catch::Matchers::Contains;

namespace {

struct PoolCase {
  Shape x;
  int64_t k, stride, pad;
};

const std::vector<PoolCase> kCases{
    {{2, 3, 8, 8}, 2, 2, 0},  // the CNN's pooling
    {{5, 3, 7, 7}, 2, 2, 0},  // odd sizes: the last row/column is dropped (floor mode)
    {{2, 2, 7, 6}, 3, 1, 1},  // overlapping windows (stride < kernel) with padding
    {{1, 3, 9, 7}, 3, 2, 1},  // overlapping, stride 2
    {{3, 5, 5}, 2, 2, 1},     // unbatched [C, H, W], padding
};

std::string name_of(const PoolCase& c) {
  return "x " + shape_str(c.x) + " k " + std::to_string(c.k) + " stride " + std::to_string(c.stride) + " pad " +
         std::to_string(c.pad);
}

/// The reference gradient: gy[o] added at each window's argmax.
Tensor naive_pool_grad(const Tensor& x, const Tensor& gy, const std::vector<int64_t>& argmax) {
  const int64_t plane = x.size(-2) * x.size(-1), plane_out = gy.size(-2) * gy.size(-1);
  std::vector<double> gx(static_cast<size_t>(x.numel()), 0.0);
  const auto g = gy.to_vector<double>();
  for (size_t o = 0; o < g.size(); ++o)
    gx[static_cast<size_t>(static_cast<int64_t>(o) / plane_out * plane + argmax[o])] += g[o];
  return from_vector(gx, x.shape(), kF64);
}

}  // namespace

TEST_CASE("max_pool2d forward and backward equal the direct reference on every device", "[nn][pool][cuda]") {
  for (const PoolCase& c : kCases) {
    INFO(name_of(c));
    const Tensor x = random_input(c.x, 1, -1.0, 1.0);  // f32 values: the maxima are exact in both types
    std::vector<int64_t> argmax;
    const Tensor ref = naive_max_pool2d(x, c.k, c.stride, c.pad, &argmax);
    const Tensor gy = random_input(ref.shape(), 2);
    const Tensor gref = naive_pool_grad(x, gy, argmax);
    for (Device d : test::devices()) {
      INFO("device " << d);
      Tensor xd = x.to(d).detach().set_requires_grad(true);
      const Tensor y = nn::functional::max_pool2d(xd, c.k, c.stride, c.pad);
      check_close(y, ref, 0.0, 0.0);  // a maximum is one of the inputs
      y.backward(gy.to(d));
      // Overlapping windows add up to ceil(k / s)^2 f32 gradients at one input: sum_tolerance of that count.
      const int64_t overlap = (c.k + c.stride - 1) / c.stride;
      check_close(xd.grad(), gref, test::sum_tolerance(overlap * overlap));
    }
  }
}

TEST_CASE("max_pool2d gradient matches finite differences (f64, distinct values)", "[nn][pool]") {
  for (const PoolCase& c : kCases) {
    INFO(name_of(c));
    // A permutation of well-separated values: no ties, and a +-1e-6 step never changes an argmax.
    const int64_t n = shape_numel(c.x);
    std::vector<double> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<double>((i * 37) % n) * 0.01;
    const Tensor x = from_vector(v, c.x, kF64);
    const Tensor r = random_input(naive_max_pool2d(x, c.k, c.stride, c.pad).shape(), 3, -1.0, 1.0, kF64);
    const double err = test::gradcheck(
        [&](const std::vector<Tensor>& in) { return sum(nn::functional::max_pool2d(in[0], c.k, c.stride, c.pad) * r); },
        {x});
    CHECK(err < 1e-8);  // piecewise linear: exact up to rounding
  }
}

TEST_CASE("max_pool2d: stride defaults to the kernel size, NaN propagates, ties go to the first maximum", "[nn][pool]") {
  const Tensor x = random_input({1, 1, 6, 6}, 4);
  CHECK(nn::functional::max_pool2d(x, 3).shape() == Shape{1, 1, 2, 2});
  std::vector<float> v(16, 1.0f);
  v[5] = NAN;
  Tensor t = from_vector(v, {1, 1, 4, 4}).set_requires_grad(true);
  const Tensor y = nn::functional::max_pool2d(t, 2);
  const auto yv = y.to_vector<float>();
  CHECK(std::isnan(yv[0]));
  CHECK(yv[1] == 1.0f);
  y.backward(ones({1, 1, 2, 2}));
  const auto g = t.grad().to_vector<float>();
  CHECK(g[5] == 1.0f);  // the NaN won window 0
  CHECK(g[2] == 1.0f);  // all-equal window 1: its first element
  CHECK(g[3] == 0.0f);
  CHECK(g[10] == 1.0f);
  CHECK(g[8] == 1.0f);
}

TEST_CASE("2x2 max_pool2d on wide planes (full and masked vector steps) keeps the window rule: ties, NaN",
          "[nn][pool]") {
  // Widths 74 and 14: 37 and 7 windows per row, i.e. two full 16-window steps and a tail, or a tail only.
  for (const int64_t width : {74, 14}) {
    INFO("width " << width);
    const int64_t h = 6, planes = 3, n = planes * h * width;
    std::vector<float> v(static_cast<size_t>(n));
    const auto r = random_input({n}, 8, 0.0, 3.0).to_vector<float>();
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = std::floor(r[static_cast<size_t>(i)]);  // many ties
    for (int64_t i = 5; i < n; i += 37) v[static_cast<size_t>(i)] = NAN;  // NaNs in every window position
    // The rule, window by window: candidates in scan order; a later one wins when greater, or NaN over a number.
    const int64_t oh = h / 2, ow = width / 2;
    std::vector<float> want;
    std::vector<int64_t> arg;
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t a = 0; a < oh; ++a)
        for (int64_t b = 0; b < ow; ++b) {
          int64_t at = 2 * a * width + 2 * b;
          float best = v[static_cast<size_t>(p * h * width + at)];
          for (const int64_t c : {2 * a * width + 2 * b + 1, (2 * a + 1) * width + 2 * b, (2 * a + 1) * width + 2 * b + 1}) {
            const float x = v[static_cast<size_t>(p * h * width + c)];
            if (x > best || (std::isnan(x) && !std::isnan(best))) best = x, at = c;
          }
          want.push_back(best);
          arg.push_back(p * h * width + at);
        }
    Tensor t = from_vector(v, {1, planes, h, width}).set_requires_grad(true);
    const Tensor y = nn::functional::max_pool2d(t, 2);
    const auto got = y.to_vector<float>();
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("window " << i);
      CHECK((got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i]))));
    }
    y.backward(ones(y.shape()));  // each window's gradient lands on its argmax
    std::vector<float> gwant(static_cast<size_t>(n), 0.0f);
    for (const int64_t a : arg) gwant[static_cast<size_t>(a)] += 1.0f;
    CHECK(t.grad().to_vector<float>() == gwant);
  }
}

TEST_CASE("max_pool2d kernels on CUDA equal the CPU bitwise (indices and gradients)", "[nn][pool][cuda]") {
  if (!test::cuda_or_warn()) return;
  for (const PoolCase& c : kCases) {
    INFO(name_of(c));
    const Shape xs4 = c.x.size() == 4 ? c.x : Shape{1, c.x[0], c.x[1], c.x[2]};
    const kernels::Pool2dGeometry g = kernels::max_pool2d_geometry(xs4, c.k, c.k, c.stride, c.stride, c.pad, c.pad);
    const Shape ys{xs4[0], xs4[1], g.out_h, g.out_w};
    const Tensor x = random_input(xs4, 5), gy = random_input(ys, 6);
    Tensor y = empty(ys), idx = empty(ys, TensorOptions{}.set_dtype(DType::i64));
    Tensor yg = empty(ys, test::kOnCuda), idxg = empty(ys, TensorOptions{DType::i64, test::kCuda});
    kernels::max_pool2d_forward(x, y, idx, g);
    kernels::max_pool2d_forward(x.to(test::kCuda), yg, idxg, g);
    CHECK(test::max_ulp(yg, y) == 0);
    CHECK(idxg.to_vector<int64_t>() == idx.to_vector<int64_t>());
    Tensor gx = empty(xs4), gxg = empty(xs4, test::kOnCuda);
    kernels::max_pool2d_backward(gy, idx, gx, g);
    kernels::max_pool2d_backward(gy.to(test::kCuda), idxg, gxg, g);
    CHECK(test::max_ulp(gxg, gx) == 0);  // the gather sums in the CPU's (output-ascending) order
  }
}

TEST_CASE("max_pool2d rejects bad arguments, naming them", "[nn][pool]") {
  const Tensor x = zeros({1, 1, 4, 4});
  CHECK_THROWS_WITH(nn::functional::max_pool2d(zeros({4, 4}), 2), Contains("[N, C, H, W]") && Contains("[4, 4]"));
  CHECK_THROWS_WITH(nn::functional::max_pool2d(x, 0), Contains("kernel size must be >= 1"));
  CHECK_THROWS_WITH(nn::functional::max_pool2d(x, 2, 2, 2), Contains("padding 2x2 for kernel 2x2"));
  CHECK_THROWS_WITH(nn::functional::max_pool2d(x, 5), Contains("larger than the padded input 4x4"));
  CHECK_THROWS_WITH(nn::functional::max_pool2d(x, 2, -1), Contains("stride"));
}
