/// @file tests/nn/test_cross_entropy_options.cpp @brief cross_entropy's ignore_index, label_smoothing and reductions: PyTorch's values (committed fixture), a loop reference, finite differences, the count of non-ignored targets, errors.
//
// Tolerances: the f64 CPU path computes in double like PyTorch's float64 run, in a different order
// (log-sum-exp, the row sum, the division): relative 1e-12. f32 logits hold the fixture's values exactly
// (multiples of 1/8 in [-3, 3]); the losses are computed in double and rounded once (relative 6e-8) and
// the gradients are one f32 expf and a few f32 operations (relative 1e-6, absolute 1e-7 around zero).
#include <catch2/catch.hpp>

#include <cmath>

#include "nn/nn.h"
#include "tests/harness/backends.h"

using namespace ember;
namespace F = ember::nn::functional;

namespace {

struct TorchCase {
  const char* name;
  Reduction reduction;
  int64_t ignore_index;
  double label_smoothing;
  std::vector<int64_t> targets;
  std::vector<double> loss;  ///< a scalar, or [N] for Reduction::None
  std::vector<double> grad;  ///< d(loss . w)/d logits, w = 1 or kRefGradOut
};

#include "tests/fixtures/loss/cross_entropy_torch.inc"

const TensorOptions kI64 = TensorOptions{}.set_dtype(DType::i64);

/// |got - want| <= atol + rtol |want| for each element; NaN only where want is NaN.
void check_values(const std::vector<double>& got, const std::vector<double>& want, double rtol, double atol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": " << got[i] << " vs " << want[i]);
    if (std::isnan(want[i])) CHECK(std::isnan(got[i]));
    else CHECK(std::abs(got[i] - want[i]) <= atol + rtol * std::abs(want[i]));
  }
}

/// The per-row losses of PyTorch's formula, as a loop: 0 where ignored, else (1 - e)(lse - x_t) + e(lse - mean x).
std::vector<double> naive_losses(const std::vector<double>& x, const std::vector<int64_t>& t, int64_t c,
                                 int64_t ignore, double eps) {
  std::vector<double> out;
  for (size_t r = 0; r < t.size(); ++r) {
    if (t[r] == ignore) {
      out.push_back(0.0);
      continue;
    }
    double mx = -INFINITY, s = 0.0, sx = 0.0;
    for (int64_t j = 0; j < c; ++j) mx = std::max(mx, x[r * static_cast<size_t>(c) + static_cast<size_t>(j)]);
    for (int64_t j = 0; j < c; ++j) {
      const double v = x[r * static_cast<size_t>(c) + static_cast<size_t>(j)];
      s += std::exp(v - mx);
      sx += v;
    }
    const double lse = mx + std::log(s);
    out.push_back((1 - eps) * (lse - x[r * static_cast<size_t>(c) + static_cast<size_t>(t[r])]) + eps * (lse - sx / c));
  }
  return out;
}

/// Runs one fixture case on `logits` (its dtype and device); returns (loss values, gradient) as doubles.
std::pair<std::vector<double>, std::vector<double>> run_case(const TorchCase& tc, const Tensor& logits0) {
  Tensor logits = logits0.detach();
  logits.set_requires_grad(true);
  const Device d = logits.device();
  const Tensor t = from_vector(tc.targets, {kRefN}, TensorOptions{DType::i64, d});
  Tensor loss = F::cross_entropy(logits, t, {tc.reduction, tc.ignore_index, tc.label_smoothing});
  if (tc.reduction == Reduction::None) {
    CHECK(loss.shape() == Shape{kRefN});
    loss.backward(from_vector(kRefGradOut, {kRefN}, TensorOptions{}.set_dtype(DType::f64)).to(logits.dtype()).to(d));
  } else {
    CHECK(loss.dim() == 0);
    loss.backward();
  }
  auto host = [](const Tensor& v) { return v.detach().to(Device::cpu()).to(DType::f64).to_vector<double>(); };
  return {host(loss), host(logits.grad())};
}

}  // namespace

TEST_CASE("cross_entropy with ignore_index, label smoothing and each reduction equals PyTorch in f64", "[nn]") {
  const Tensor logits = from_vector(kRefLogits, {kRefN, kRefC}, TensorOptions{}.set_dtype(DType::f64));
  for (const TorchCase& tc : kTorchCases) {
    INFO(tc.name);
    const auto [loss, grad] = run_case(tc, logits);
    check_values(loss, tc.loss, 1e-12, 1e-15);
    check_values(grad, tc.grad, 1e-12, 1e-15);
  }
}

TEST_CASE("cross_entropy with the options equals PyTorch in f32 on every device", "[nn][cuda]") {
  for (Device d : test::devices()) {
    const Tensor logits = from_vector(kRefLogits, {kRefN, kRefC}).to(d);  // f32: the values are exact
    for (const TorchCase& tc : kTorchCases) {
      INFO(d.str() << ", " << tc.name);
      const auto [loss, grad] = run_case(tc, logits);
      check_values(loss, tc.loss, 1e-6, 1e-7);
      check_values(grad, tc.grad, 1e-6, 1e-7);
    }
  }
}

TEST_CASE("cross_entropy's per-row losses match the loop reference; sum and mean reduce them", "[nn][cuda]") {
  const int64_t n = 37, c = 11;
  std::vector<int64_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = i % 4 == 1 ? 7 : (i * 5) % c;  // 7 = ignore_index
  const Tensor x = test::random_input({n, c}, 31, -4, 4, TensorOptions{}.set_dtype(DType::f64));
  const std::vector<double> ref = naive_losses(x.to_vector<double>(), t, c, 7, 0.3);
  double total = 0;
  int64_t kept = 0;
  for (size_t i = 0; i < t.size(); ++i) total += ref[i], kept += t[i] != 7;
  for (Device d : test::devices()) {
    INFO(d.str());
    const DType dt = d.is_cpu() ? DType::f64 : DType::f32;
    const double rtol = d.is_cpu() ? 1e-12 : 1e-6;  // f32: losses rounded once, sums of 37 of them
    const Tensor xd = x.to(dt).to(d), td = from_vector(t, {n}, TensorOptions{DType::i64, d});
    const CrossEntropyOptions o{.reduction = Reduction::None, .ignore_index = 7, .label_smoothing = 0.3};
    check_values(F::cross_entropy(xd, td, o).to(Device::cpu()).to(DType::f64).to_vector<double>(), ref, rtol, 1e-7);
    CHECK(F::cross_entropy(xd, td, {Reduction::Sum, 7, 0.3}).to(Device::cpu()).to(DType::f64).item() == Approx(total).epsilon(rtol));
    CHECK(F::cross_entropy(xd, td, {Reduction::Mean, 7, 0.3}).to(Device::cpu()).to(DType::f64).item() ==
          Approx(total / static_cast<double>(kept)).epsilon(rtol));
    CHECK(F::count_not_ignored(td, 7) == kept);
    CHECK(F::count_not_ignored(td) == n);  // no -100 among them
  }
}

TEST_CASE("cross_entropy options: gradients agree with finite differences in f64", "[nn]") {
  const Tensor t = from_vector(std::vector<int64_t>{0, -100, 3, 1, 2}, {5}, kI64);
  const Tensor w = test::random_input({5}, 13, -1, 1, TensorOptions{}.set_dtype(DType::f64));
  for (const Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    for (const double eps : {0.0, 0.2, 1.0}) {
      INFO("reduction " << static_cast<int>(r) << ", label_smoothing " << eps);
      auto f = [&](const std::vector<Tensor>& in) {
        Tensor l = F::cross_entropy(in[0], t, {r, -100, eps});
        return r == Reduction::None ? sum(l * w) : l;
      };
      // Central differences with eps 1e-6 in f64: truncation ~eps^2, rounding ~1e-16/eps = 1e-10.
      CHECK(test::gradcheck(f, {test::random_input({5, 4}, 12, -2, 2, TensorOptions{}.set_dtype(DType::f64))}) < 1e-6);
    }
  }
}

TEST_CASE("cross_entropy options: the old signature, ignored targets, and errors", "[nn]") {
  const Tensor x = test::random_input({3, 4}, 14);
  const Tensor t = from_vector(std::vector<int64_t>{1, -100, 3}, {3}, kI64);
  // The Reduction overload is the options overload with the defaults (ignore_index -100, no smoothing).
  CHECK(F::cross_entropy(x, t).item() == F::cross_entropy(x, t, CrossEntropyOptions{}).item());
  CHECK(F::cross_entropy(x, t, Reduction::Sum).item() ==
        F::cross_entropy(x, t, {.reduction = Reduction::Sum}).item());
  // -100 is only special as the ignore_index: with another ignore_index it is an invalid target.
  CHECK_THROWS_WITH(F::cross_entropy(x, t, {.ignore_index = 3}),
                    Catch::Contains("target -100 at position 1") && Catch::Contains("ignore_index = 3"));
  CHECK_THROWS_WITH(F::cross_entropy(x, t, {.label_smoothing = 1.5}),
                    Catch::Contains("label_smoothing must be in [0, 1]") && Catch::Contains("1.5"));
  CHECK_THROWS_WITH(F::cross_entropy(x, t, {.label_smoothing = -0.1}), Catch::Contains("label_smoothing"));
  CHECK_THROWS_WITH(F::count_not_ignored(zeros({3})), Catch::Contains("i64"));
  CHECK(F::count_not_ignored(from_vector(std::vector<int64_t>{-100, 5, -100, -100}, {2, 2}, kI64)) == 1);
  // mse_loss with Reduction::None: the elementwise squares.
  CHECK(F::mse_loss(from_vector(std::vector<float>{1, 2}, {2}), from_vector(std::vector<float>{0, 4}, {2}),
                    Reduction::None)
            .to_vector<float>() == std::vector<float>{1, 4});
}
