/// @file tests/nn/test_batchnorm.cpp @brief functional::batch_norm and the batch-norm kernels: textbook reference (f64), finite differences, running statistics, evaluation mode, CUDA vs CPU, errors.
#include <catch2/catch.hpp>

#include <cmath>

#include "kernels/batchnorm.h"
#include "nn/functional.h"
#include "tests/kernels/cuda_test_util.h"
#include "tests/nn/conv_reference.h"

using namespace ember;
using ember::test::random_input;
using ember::test::nnconv::check_close;
using ember::test::nnconv::kF64;
using Catch::Matchers::Contains;
namespace F = ember::nn::functional;

namespace {

/// Per-channel mean and biased variance of x [N, C, *] by the textbook formulas, in double.
struct Textbook {
  std::vector<double> mean, var;
};

Textbook textbook_stats(const Tensor& x) {
  const auto v = x.to_vector<double>();
  const int64_t n = x.size(0), c = x.size(1), s = x.numel() / (n * c);
  Textbook t{std::vector<double>(static_cast<size_t>(c), 0.0), std::vector<double>(static_cast<size_t>(c), 0.0)};
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0.0, sq = 0.0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < s; ++j) sum += v[static_cast<size_t>((i * c + ch) * s + j)];
    const double mean = sum / static_cast<double>(n * s);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < s; ++j) {
        const double d = v[static_cast<size_t>((i * c + ch) * s + j)] - mean;
        sq += d * d;
      }
    t.mean[static_cast<size_t>(ch)] = mean;
    t.var[static_cast<size_t>(ch)] = sq / static_cast<double>(n * s);
  }
  return t;
}

/// y = (x - mean[c]) / sqrt(var[c] + eps) * w[c] + b[c], in double.
Tensor textbook_normalize(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& var,
                          const Tensor& w, const Tensor& b, double eps) {
  const auto v = x.to_vector<double>();
  const auto wv = w.defined() ? w.to_vector<double>() : std::vector<double>(mean.size(), 1.0);
  const auto bv = b.defined() ? b.to_vector<double>() : std::vector<double>(mean.size(), 0.0);
  const int64_t c = x.size(1), s = x.numel() / (x.size(0) * c);
  std::vector<double> y(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const size_t ch = static_cast<size_t>((static_cast<int64_t>(i) / s) % c);
    y[i] = (v[i] - mean[ch]) / std::sqrt(var[ch] + eps) * wv[ch] + bv[ch];
  }
  return from_vector(y, x.shape(), kF64);
}

const std::vector<Shape> kShapes{{6, 3}, {5, 3, 4}, {5, 3, 7, 7}, {4, 2, 13, 11}};

}  // namespace

TEST_CASE("batch_norm training forward equals the textbook formula (f64, and f32 on every device)", "[nn][bn][cuda]") {
  for (const Shape& shape : kShapes) {
    INFO("input " << shape_str(shape));
    const int64_t c = shape[1];
    const Tensor x = random_input(shape, 1, -2.0, 3.0, kF64);
    const Tensor w = random_input({c}, 2, 0.5, 1.5, kF64), b = random_input({c}, 3, -0.5, 0.5, kF64);
    const Textbook t = textbook_stats(x);
    const Tensor ref = textbook_normalize(x, t.mean, t.var, w, b, 1e-5);
    F::BatchNormBatchStats stats;
    check_close(F::batch_norm(x, Tensor(), Tensor(), {.weight = w, .bias = b, .training = true, .batch_stats_out = &stats}),
                ref, 1e-12, 1e-12);
    check_close(stats.mean, from_vector(t.mean, {c}, kF64), 1e-12, 1e-14);
    check_close(stats.var, from_vector(t.var, {c}, kF64), 1e-12, 1e-14);
    CHECK(stats.count == shape_numel(shape) / c);
    // Without affine parameters: scale 1, shift 0.
    check_close(F::batch_norm(x, Tensor(), Tensor(), {.training = true}),
                textbook_normalize(x, t.mean, t.var, Tensor(), Tensor(), 1e-5), 1e-12, 1e-12);
    for (Device d : test::devices()) {
      INFO("device " << d);
      const auto f32 = [&](const Tensor& v) { return v.to(DType::f32).to(d); };
      const Tensor y = F::batch_norm(f32(x), Tensor(), Tensor(), {.weight = f32(w), .bias = f32(b), .training = true});
      // f32: statistics are sums of up to 572 values (Welford in f32 on CUDA) and y = O(1): 1e-5
      // relative to the O(1) output (sum_tolerance(572) allows ~5e-6 relative, 2e-5 absolute).
      check_close(y, ref, test::sum_tolerance(shape_numel(shape) / c));
    }
  }
}

TEST_CASE("batch_norm gradients for x, weight and bias match finite differences (f64)", "[nn][bn]") {
  for (const Shape& shape : {Shape{6, 3}, Shape{4, 2, 3}, Shape{3, 2, 3, 2}}) {
    INFO("input " << shape_str(shape));
    const int64_t c = shape[1];
    const Tensor x = random_input(shape, 4, -1.0, 1.0, kF64);
    const Tensor w = random_input({c}, 5, 0.5, 1.5, kF64), b = random_input({c}, 6, -0.5, 0.5, kF64);
    const Tensor r = random_input(shape, 7, -1.0, 1.0, kF64);  // upstream gradient
    const double train_err = test::gradcheck(
        [&](const std::vector<Tensor>& in) {
          return sum(F::batch_norm(in[0], Tensor(), Tensor(), {.weight = in[1], .bias = in[2], .training = true}) * r);
        },
        {x, w, b});
    CHECK(train_err < 1e-7);  // central differences with eps 1e-6 in f64: truncation + rounding ~1e-9
    const Tensor rm = random_input({c}, 8, -0.5, 0.5, kF64), rv = random_input({c}, 9, 0.5, 2.0, kF64);
    const double eval_err = test::gradcheck(
        [&](const std::vector<Tensor>& in) {
          return sum(F::batch_norm(in[0], rm, rv, {.weight = in[1], .bias = in[2], .training = false}) * r);
        },
        {x, w, b});
    CHECK(eval_err < 1e-7);
  }
}

TEST_CASE("batch_norm training updates the running statistics with the unbiased variance", "[nn][bn][cuda]") {
  for (Device d : test::devices()) {
    INFO("device " << d);
    const Tensor x = random_input({5, 3, 4, 4}, 10, -1.0, 2.0);
    const Tensor rm0 = random_input({3}, 11), rv0 = random_input({3}, 12, 0.5, 1.5);
    Tensor rm = rm0.to(d).clone(), rv = rv0.to(d).clone();
    Tensor nbt = zeros(Shape{}, TensorOptions{DType::i64, d});
    F::batch_norm(x.to(d), rm, rv, {.training = true, .momentum = 0.25, .num_batches_tracked = nbt});
    const Textbook t = textbook_stats(x);
    const double n = 5 * 16;
    std::vector<double> em(3), ev(3);
    const auto m0 = rm0.to_vector<double>(), v0 = rv0.to_vector<double>();
    for (size_t c = 0; c < 3; ++c) {
      em[c] = 0.75 * m0[c] + 0.25 * t.mean[c];
      ev[c] = 0.75 * v0[c] + 0.25 * t.var[c] * n / (n - 1);
    }
    // f32 statistics of 80 values, then one fma: well within 1e-5 relative.
    check_close(rm, from_vector(em, {3}, kF64), 1e-5, 1e-6);
    check_close(rv, from_vector(ev, {3}, kF64), 1e-5, 1e-6);
    CHECK(nbt.item() == 1.0);
    // Evaluation leaves them alone and does not count.
    F::batch_norm(x.to(d), rm, rv, {.training = false, .num_batches_tracked = nbt});
    check_close(rm, from_vector(em, {3}, kF64), 1e-5, 1e-6);
    CHECK(nbt.item() == 1.0);
  }
}

TEST_CASE("batch_norm in evaluation normalizes with the running statistics", "[nn][bn][cuda]") {
  const Tensor x = random_input({4, 3, 2, 2}, 13, -1.0, 1.0, kF64);
  const std::vector<double> m{0.5, -1.0, 0.0}, v{4.0, 1.0, 0.25};
  const Tensor w = from_vector(std::vector<double>{2.0, 1.0, -1.0}, {3}, kF64);
  const Tensor b = from_vector(std::vector<double>{0.0, 1.0, 0.5}, {3}, kF64);
  const Tensor ref = textbook_normalize(x, m, v, w, b, 1e-3);
  for (Device d : test::devices()) {
    INFO("device " << d);
    const auto f32 = [&](const Tensor& t) { return t.to(DType::f32).to(d); };
    const Tensor y = F::batch_norm(f32(x), f32(from_vector(m, {3}, kF64)), f32(from_vector(v, {3}, kF64)),
                                   {.weight = f32(w), .bias = f32(b), .training = false, .eps = 1e-3});
    check_close(y, ref, test::elementwise_tolerance());  // a few f32 operations per element
  }
}

TEST_CASE("batch-norm kernels on CUDA match the CPU on odd shapes", "[nn][bn][cuda]") {
  if (!test::cuda_or_warn()) return;
  for (const Shape& shape : {Shape{5, 3, 7, 7}, Shape{5, 3}, Shape{37, 4, 3}, Shape{4, 2, 13, 11}}) {
    INFO("input " << shape_str(shape));
    const int64_t c = shape[1], m = shape_numel(shape) / c;
    const Tensor x = random_input(shape, 20, -1.0, 3.0), dy = random_input(shape, 21);
    const Tensor w = random_input({c}, 22, 0.5, 1.5), b = random_input({c}, 23);
    const auto on = [](const Tensor& t) { return t.to(test::kCuda); };
    // Statistics: f32 Welford (CUDA) vs a two-pass double sum (CPU), relative ~sqrt(m) f32 ulps.
    Tensor mean = empty({c}), var = empty({c}), mean_g = empty({c}, test::kOnCuda), var_g = empty({c}, test::kOnCuda);
    kernels::batch_norm_stats(x, mean, var);
    kernels::batch_norm_stats(on(x), mean_g, var_g);
    check_close(mean_g, mean, test::sum_tolerance(m));
    check_close(var_g, var, test::sum_tolerance(m));
    // Given the same statistics, normalize rounds exactly like the CPU (one sqrt, division, fma).
    Tensor y = empty(shape), y_g = empty(shape, test::kOnCuda);
    kernels::batch_norm_normalize(x, mean, var, w, b, 1e-5, y);
    kernels::batch_norm_normalize(on(x), on(mean), on(var), on(w), on(b), 1e-5, y_g);
    const int64_t allowed = test::cuda_emulated() ? 0 : 1;  // a GPU's sqrtf/division are IEEE-rounded too
    CHECK(test::max_ulp(y_g, y) <= allowed);
    // Backward sums: double accumulators on both, different orders.
    Tensor sd = empty({c}), sdx = empty({c}), sd_g = empty({c}, test::kOnCuda), sdx_g = empty({c}, test::kOnCuda);
    kernels::batch_norm_backward_reduce(dy, x, mean, var, 1e-5, sd, sdx);
    kernels::batch_norm_backward_reduce(on(dy), on(x), on(mean), on(var), 1e-5, sd_g, sdx_g);
    check_close(sd_g, sd, 1e-6, 1e-6);
    check_close(sdx_g, sdx, 1e-6, 1e-6);
    for (bool batch_stats : {true, false}) {
      INFO("batch_stats " << batch_stats);
      Tensor dx = empty(shape), dx_g = empty(shape, test::kOnCuda);
      kernels::batch_norm_backward_input(dy, x, mean, var, w, sd, sdx, 1e-5, batch_stats, dx);
      kernels::batch_norm_backward_input(on(dy), on(x), on(mean), on(var), on(w), on(sd), on(sdx), 1e-5, batch_stats,
                                         dx_g);
      CHECK(test::max_ulp(dx_g, dx) <= allowed);  // same per-element operations, explicit fma
    }
    Tensor rm = random_input({c}, 24), rv = random_input({c}, 25, 0.5, 1.5);
    Tensor rm_g = on(rm), rv_g = on(rv);
    Tensor nbt = zeros(Shape{}, TensorOptions{}.set_dtype(DType::i64)), nbt_g = zeros(Shape{}, TensorOptions{DType::i64, test::kCuda});
    kernels::batch_norm_update_running(rm, rv, nbt, mean, var, 0.1, 1.25);
    kernels::batch_norm_update_running(rm_g, rv_g, nbt_g, on(mean), on(var), 0.1, 1.25);
    CHECK(test::max_ulp(rm_g, rm) == 0);
    CHECK(test::max_ulp(rv_g, rv) == 0);
    CHECK(nbt_g.item() == 1.0);
  }
}

TEST_CASE("batch_norm rejects bad input, naming the channel count", "[nn][bn]") {
  const Tensor x = zeros({4, 3, 2, 2});
  CHECK_THROWS_WITH(F::batch_norm(x, Tensor(), Tensor(), {.weight = ones({4}), .training = true}),
                    Contains("weight must be [3]") && Contains("3 channels"));
  CHECK_THROWS_WITH(F::batch_norm(x, zeros({2}), ones({2})), Contains("running_mean must be [3]"));
  CHECK_THROWS_WITH(F::batch_norm(x, zeros({3}), Tensor()), Contains("both be given"));
  CHECK_THROWS_WITH(F::batch_norm(zeros({1, 3}), Tensor(), Tensor(), {.training = true}),
                    Contains("more than 1 value per channel"));
  CHECK_THROWS_WITH(F::batch_norm(zeros({4}), Tensor(), Tensor(), {.training = true}), Contains("[N, C]"));
  CHECK_THROWS_WITH(F::batch_norm(x, Tensor(), Tensor(), {.weight = ones({3}, kF64), .training = true}),
                    Contains("f64"));
  CHECK_THROWS_WITH(F::batch_norm(x, Tensor(), Tensor(), {.training = true, .eps = 0.0}), Contains("eps"));
}
