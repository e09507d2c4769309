/// @file tests/nn/test_layernorm.cpp @brief functional::layer_norm and nn::LayerNorm: a naive double-loop reference (forward, and backward through the explicit Jacobian), f64 finite differences, a large-mean input, every device, odd and long rows, errors.
#include <catch2/catch.hpp>

#include <cmath>

#include "kernels/layernorm.h"
#include "nn/nn.h"
#include "tests/nn/conv_reference.h"

using namespace ember;
using ember::test::random_input;
using ember::test::nnconv::check_close;
using ember::test::nnconv::kF64;
using Catch::Matchers::Contains;
namespace F = ember::nn::functional;

namespace {

/// LayerNorm over rows of n, written out in double: two-pass mean and biased variance; the input
/// gradient by the explicit Jacobian dxhat_j/dx_k = rstd * (delta_jk - 1/n - xhat_j * xhat_k / n), summed
/// against g = dy * w (O(n^2) per row: a derivation independent of the kernels' closed form).
struct Naive {
  std::vector<double> y, mean, rstd, dx, dw, db;
};

Naive naive_layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy, int64_t n, double eps) {
  const auto xv = x.to_vector<double>(), gv = dy.to_vector<double>();
  const auto wv = w.defined() ? w.to_vector<double>() : std::vector<double>(static_cast<size_t>(n), 1.0);
  const auto bv = b.defined() ? b.to_vector<double>() : std::vector<double>(static_cast<size_t>(n), 0.0);
  const int64_t rows = static_cast<int64_t>(xv.size()) / n;
  Naive r;
  r.y.resize(xv.size());
  r.dx.resize(xv.size());
  r.dw.assign(static_cast<size_t>(n), 0.0);
  r.db.assign(static_cast<size_t>(n), 0.0);
  for (int64_t i = 0; i < rows; ++i) {
    const auto at = [&](int64_t j) { return static_cast<size_t>(i * n + j); };
    double sum = 0.0, sq = 0.0;
    for (int64_t j = 0; j < n; ++j) sum += xv[at(j)];
    const double mu = sum / static_cast<double>(n);
    for (int64_t j = 0; j < n; ++j) sq += (xv[at(j)] - mu) * (xv[at(j)] - mu);
    const double rs = 1.0 / std::sqrt(sq / static_cast<double>(n) + eps);
    r.mean.push_back(mu);
    r.rstd.push_back(rs);
    std::vector<double> xhat(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) {
      xhat[size_t(j)] = (xv[at(j)] - mu) * rs;
      r.y[at(j)] = xhat[size_t(j)] * wv[size_t(j)] + bv[size_t(j)];
      r.dw[size_t(j)] += gv[at(j)] * xhat[size_t(j)];
      r.db[size_t(j)] += gv[at(j)];
    }
    for (int64_t k = 0; k < n; ++k) {
      double s = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        const double jac = rs * ((j == k ? 1.0 : 0.0) - 1.0 / static_cast<double>(n) -
                                 xhat[size_t(j)] * xhat[size_t(k)] / static_cast<double>(n));
        s += gv[at(j)] * wv[size_t(j)] * jac;
      }
      r.dx[at(k)] = s;
    }
  }
  return r;
}

Tensor as_tensor(const std::vector<double>& v, const Shape& shape) { return from_vector(v, shape, kF64); }

/// Runs layer_norm forward and backward (seeded with dy) on copies of x, w, b of `dtype` on `d`.
struct Run {
  Tensor y, dx, dw, db;
};

Run run_layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy, DType dtype, Device d) {
  const auto leaf = [&](const Tensor& t) {
    return t.defined() ? t.to(dtype).to(d).detach().set_requires_grad(true) : Tensor();
  };
  Tensor xl = leaf(x), wl = leaf(w), bl = leaf(b);
  Tensor y = F::layer_norm(xl, wl, bl);
  y.backward(dy.to(dtype).to(d));
  return Run{y.detach(), xl.grad(), wl.defined() ? wl.grad() : Tensor(), bl.defined() ? bl.grad() : Tensor()};
}

// [rows..., n]: one value; n = 1 (var 0: y = bias); odd n below a warp; n = 33, just over a warp; rows
// longer than a 256-thread block (300, 1000: threads loop over the row); enough rows for several
// backward chunks (40 x 7, 3 x 5 x 7).
const std::vector<Shape> kShapes{{1, 1}, {3, 1}, {5, 7}, {2, 3, 33}, {4, 300}, {2, 1000}, {40, 7}, {3, 5, 7}};

}  // namespace

TEST_CASE("layer_norm forward and backward equal the naive double loop (f64 exact, f32 on every device)",
          "[nn][layernorm][cuda]") {
  for (const Shape& shape : kShapes) {
    INFO("input " << shape_str(shape));
    const int64_t n = shape.back();
    const Tensor x = random_input(shape, 1, -2.0, 3.0, kF64), dy = random_input(shape, 2, -1.0, 1.0, kF64);
    const Tensor w = random_input({n}, 3, 0.5, 1.5, kF64), b = random_input({n}, 4, -0.5, 0.5, kF64);
    const Naive ref = naive_layer_norm(x, w, b, dy, n, 1e-5);
    // f64 on the CPU: both sides in double from the same values, differing only in summation order
    // (<= n * 2^-53 relative for the statistics, ~1e-13 here).
    const Run cpu = run_layer_norm(x, w, b, dy, DType::f64, Device::cpu());
    check_close(cpu.y, as_tensor(ref.y, shape), 1e-10, 1e-12);
    check_close(cpu.dx, as_tensor(ref.dx, shape), 1e-10, 1e-12);
    check_close(cpu.dw, as_tensor(ref.dw, {n}), 1e-10, 1e-12);
    check_close(cpu.db, as_tensor(ref.db, {n}), 1e-10, 1e-12);
    for (Device d : test::devices()) {
      INFO("device " << d << ", f32");
      const Run got = run_layer_norm(x, w, b, dy, DType::f32, d);
      // f32: y and dx are a few rounded operations on O(1) values (|xhat| < 3.2, rstd < 2.5 here) after
      // statistics / row sums that are exact to ~1e-7 relative (double on the CPU, f32 Welford or double
      // sums on CUDA: sum_tolerance(n)); dweight/dbias add `rows` f32-rounded terms in double.
      const test::Tolerance t = test::sum_tolerance(std::max<int64_t>(n, shape_numel(shape) / n));
      check_close(got.y, as_tensor(ref.y, shape), t.rtol, 4 * t.atol);
      check_close(got.dx, as_tensor(ref.dx, shape), t.rtol, 4 * t.atol);
      check_close(got.dw, as_tensor(ref.dw, {n}), t.rtol, 4 * t.atol);
      check_close(got.db, as_tensor(ref.db, {n}), t.rtol, 4 * t.atol);
    }
  }
}

TEST_CASE("layer_norm without weight or bias normalizes with scale 1 and shift 0", "[nn][layernorm]") {
  const Shape shape{6, 9};
  const Tensor x = random_input(shape, 5, -1.0, 4.0, kF64), dy = random_input(shape, 6, -1.0, 1.0, kF64);
  const Naive ref = naive_layer_norm(x, Tensor(), Tensor(), dy, 9, 1e-5);
  const Run got = run_layer_norm(x, Tensor(), Tensor(), dy, DType::f64, Device::cpu());
  check_close(got.y, as_tensor(ref.y, shape), 1e-10, 1e-12);
  check_close(got.dx, as_tensor(ref.dx, shape), 1e-10, 1e-12);
  // Only a weight (no bias) also works: the gradient slots of the missing operands stay empty.
  const Tensor w = random_input({9}, 7, 0.5, 1.5, kF64);
  const Naive refw = naive_layer_norm(x, w, Tensor(), dy, 9, 1e-5);
  const Run gotw = run_layer_norm(x, w, Tensor(), dy, DType::f64, Device::cpu());
  check_close(gotw.y, as_tensor(refw.y, shape), 1e-10, 1e-12);
  check_close(gotw.dw, as_tensor(refw.dw, {9}), 1e-10, 1e-12);
}

TEST_CASE("layer_norm gradients for x, weight and bias match finite differences (f64)", "[nn][layernorm][gradcheck]") {
  for (const Shape& shape : {Shape{4, 5}, Shape{2, 3, 7}, Shape{1}, Shape{3, 1}}) {
    INFO("input " << shape_str(shape));
    const int64_t n = shape.back();
    const Tensor x = random_input(shape, 8, -1.0, 1.0, kF64), r = random_input(shape, 9, -1.0, 1.0, kF64);
    const Tensor w = random_input({n}, 10, 0.5, 1.5, kF64), b = random_input({n}, 11, -0.5, 0.5, kF64);
    const double err = test::gradcheck(
        [&](const std::vector<Tensor>& in) { return sum(F::layer_norm(in[0], in[1], in[2]) * r); }, {x, w, b});
    CHECK(err < 1e-7);  // central differences with eps 1e-6 in f64: truncation + rounding ~1e-9
  }
  // Over the last two dims (normalized_shape [3, 4], weight and bias [3, 4]).
  const Tensor x = random_input({2, 3, 4}, 12, -1.0, 1.0, kF64), r = random_input({2, 3, 4}, 13, -1.0, 1.0, kF64);
  const Tensor w = random_input({3, 4}, 14, 0.5, 1.5, kF64), b = random_input({3, 4}, 15, -0.5, 0.5, kF64);
  const double err = test::gradcheck(
      [&](const std::vector<Tensor>& in) { return sum(F::layer_norm(in[0], {3, 4}, in[1], in[2]) * r); }, {x, w, b});
  CHECK(err < 1e-7);
}

TEST_CASE("layer_norm over two trailing dims equals the last-dim form on the flattened input", "[nn][layernorm]") {
  const Tensor x = random_input({5, 3, 4}, 16, -1.0, 2.0, kF64);
  const Tensor w = random_input({3, 4}, 17, 0.5, 1.5, kF64), b = random_input({3, 4}, 18, -0.5, 0.5, kF64);
  const Tensor got = F::layer_norm(x, {3, 4}, w, b);
  CHECK(got.shape() == Shape{5, 3, 4});
  const Tensor flat = F::layer_norm(x.reshape({5, 12}), w.reshape({12}), b.reshape({12}));
  const Naive ref = naive_layer_norm(x, w, b, x, 12, 1e-5);
  check_close(got.reshape({5, 12}), flat, 0.0, 0.0);
  check_close(got.reshape({60}), as_tensor(ref.y, {60}), 1e-10, 1e-12);
}

TEST_CASE("layer_norm keeps the variance of inputs with a large mean (Welford, not the sum of squares)",
          "[nn][layernorm][cuda]") {
  // x = 1e4 + U[-1, 1]: sum(x^2) / n - mean^2 subtracts two values of ~1e8 to find ~0.33. In f64 that
  // formula loses ~8 of 16 digits (error ~1e-8 relative in rstd and beyond), in f32 everything (an
  // f32 ulp of 1e8 is 8). A one-pass Welford update never squares an un-centered value.
  const Shape shape{4, 1000};
  const Tensor x = add(random_input(shape, 19, -1.0, 1.0, kF64), 1e4);
  const Tensor dy = random_input(shape, 20, -1.0, 1.0, kF64);
  const Naive ref = naive_layer_norm(x, Tensor(), Tensor(), dy, 1000, 1e-5);
  Tensor y = empty(shape, kF64), mean = empty({4}, kF64), rstd = empty({4}, kF64);
  kernels::layer_norm_forward(x, Tensor(), Tensor(), 1e-5, y, mean, rstd);
  check_close(mean, as_tensor(ref.mean, {4}), 1e-14, 0.0);
  check_close(rstd, as_tensor(ref.rstd, {4}), 1e-12, 0.0);  // the naive f64 formula is off by ~1e-8 or more
  check_close(y, as_tensor(ref.y, shape), 1e-10, 1e-10);
  for (Device d : test::devices()) {
    INFO("device " << d << ", f32");
    const Tensor xf = x.to(DType::f32).to(d);
    const Naive reff = naive_layer_norm(xf, Tensor(), Tensor(), dy, 1000, 1e-5);  // of the f32-rounded inputs
    Tensor yf = empty(shape, TensorOptions{DType::f32, d}), mf = empty({4}, TensorOptions{DType::f32, d});
    Tensor rf = empty({4}, TensorOptions{DType::f32, d});
    kernels::layer_norm_forward(xf, Tensor(), Tensor(), 1e-5, yf, mf, rf);
    // rstd: the running f32 mean carries errors of ~1 ulp of 1e4 (~1e-3) = 2e-3 of the deviation; the
    // variance around it changes only by their square (~4e-6); M2's own rounding adds ~1e-6 relative.
    check_close(rf, as_tensor(reff.rstd, {4}), 1e-4, 0.0);
    // The mean is rounded to f32 about once: half an ulp of 1e4 (4.9e-4) plus the small values' error.
    check_close(mf, as_tensor(reff.mean, {4}), 0.0, 5e-4);
    // y: the mean is stored in f32 (half an ulp of 1e4 = 4.9e-4 off the exact mean) and scaled by
    // rstd ~1.73: up to 8.5e-4 absolute, plus a few ulps of the O(1) result.
    check_close(yf, as_tensor(reff.y, shape), 1e-5, 1.5e-3);
    // The gradient stays O(1)-accurate too (it sees xhat and rstd only).
    const Run g = run_layer_norm(xf, Tensor(), Tensor(), dy, DType::f32, d);
    check_close(g.dx, as_tensor(reff.dx, shape), 1e-3, 5e-3);
  }
}

TEST_CASE("nn::LayerNorm has PyTorch's parameters and forwards through layer_norm", "[nn][layernorm]") {
  nn::LayerNorm ln(6);
  const auto params = ln.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "weight");
  CHECK(params[1].first == "bias");
  CHECK(ln.weight.shape() == Shape{6});
  CHECK(ln.weight.to_vector<double>() == std::vector<double>(6, 1.0));
  CHECK(ln.bias.to_vector<double>() == std::vector<double>(6, 0.0));
  CHECK(ln.weight.requires_grad());
  CHECK(ln.str() == "LayerNorm([6], eps=1e-05, elementwise_affine=true)");
  {
    NoGradGuard ng;
    ln.weight.copy_(random_input({6}, 21, 0.5, 1.5));
    ln.bias.copy_(random_input({6}, 22, -0.5, 0.5));
  }
  const Tensor x = random_input({2, 3, 6}, 23, -1.0, 1.0);
  check_close(ln(x), F::layer_norm(x, ln.weight, ln.bias), 0.0, 0.0);
  sum(ln(x) * x).backward();
  CHECK(ln.weight.grad().defined());
  CHECK(ln.bias.grad().defined());
  ln.reset_parameters();
  CHECK(ln.weight.to_vector<double>() == std::vector<double>(6, 1.0));

  nn::LayerNorm plain(6, 1e-3, false);
  CHECK(plain.named_parameters().empty());
  check_close(plain(x), F::layer_norm(x, Tensor(), Tensor(), 1e-3), 0.0, 0.0);
  nn::LayerNorm two(nn::LayerNormOptions{.normalized_shape = {3, 6}, .bias = false, .dtype = DType::f64});
  REQUIRE(two.named_parameters().size() == 1);
  CHECK(two.weight.shape() == Shape{3, 6});
  CHECK(two.weight.dtype() == DType::f64);
  CHECK(two(x.to(DType::f64)).shape() == Shape{2, 3, 6});
}

TEST_CASE("layer_norm rejects a wrong last dim, non-floating input and bad parameters", "[nn][layernorm]") {
  const Tensor x = random_input({2, 5}, 24);
  CHECK_THROWS_WITH(F::layer_norm(x, {4}), Contains("expected an input [*, 4]") && Contains("[2, 5]"));
  CHECK_THROWS_WITH(F::layer_norm(x, {2, 4}), Contains("normalized_shape [2, 4]"));
  CHECK_THROWS_WITH(F::layer_norm(x, Shape{}), Contains("at least one dim"));
  CHECK_THROWS_WITH(F::layer_norm(x, Shape{0}), Contains("must be positive"));
  const Tensor xi = zeros({2, 5}, TensorOptions{}.set_dtype(DType::i64));
  CHECK_THROWS_WITH(F::layer_norm(xi, {5}), Contains("expected a floating input"));
  CHECK_THROWS_WITH(F::layer_norm(x, ones({4})), Contains("weight must be f32[5]"));
  CHECK_THROWS_WITH(F::layer_norm(x, ones({5}), ones({5}, kF64)), Contains("bias must be f32[5]"));
  CHECK_THROWS_WITH(F::layer_norm(x, ones({5}), Tensor(), 0.0), Contains("eps must be positive"));
  nn::LayerNorm ln(4);
  CHECK_THROWS_WITH(ln(x), Contains("expected an input [*, 4]"));
  CHECK_THROWS_WITH(nn::LayerNorm(0), Contains("must be positive"));
  CHECK_THROWS_WITH(nn::LayerNorm(nn::LayerNormOptions{}), Contains("at least one dim"));
  // The kernel entry point checks what reaches it directly (no ops-layer checks in front).
  Tensor y = empty({2, 5}), mean = empty({2}), rstd = empty({3});
  CHECK_THROWS_WITH(kernels::layer_norm_forward(x, Tensor(), Tensor(), 1e-5, y, mean, rstd),
                    Contains("rstd must be a contiguous f32[2]"));
}

TEST_CASE("layer_norm of an empty batch is empty and gives zero parameter gradients", "[nn][layernorm]") {
  nn::LayerNorm ln(3);
  const Tensor x = zeros({0, 3}).set_requires_grad(true);
  Tensor y = ln(x);
  CHECK(y.shape() == Shape{0, 3});
  sum(y).backward();
  CHECK(ln.weight.grad().to_vector<double>() == std::vector<double>(3, 0.0));
  CHECK(ln.bias.grad().to_vector<double>() == std::vector<double>(3, 0.0));
}
