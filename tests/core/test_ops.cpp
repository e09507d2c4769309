/// @file tests/core/test_ops.cpp @brief Runs every op case of tests/harness/op_cases on every backend: naive reference, finite-difference gradients (f64), f32 forward + backward vs f64.
#include <catch2/catch.hpp>

#include <exception>

#include "tests/harness/backends.h"
#include "tests/harness/op_cases.h"

using namespace ember;
using namespace ember::test;

namespace {

struct Evaluated {
  Tensor out;
  std::vector<Tensor> grads;  // of the base inputs
};

/// Forward, then backward seeded with a random gradient (never all ones, so every path of a
/// broadcast or reduction is weighted differently); the seed draws the same values on every device.
Evaluated evaluate(const OpCase& c, size_t index, DType dtype, Device device) {
  std::vector<Tensor> xs = make_inputs(c, index, dtype, device, true);
  Tensor out = run_case(c, xs);
  Tensor seed = random_input(out.shape(), 0xC0FFEEull + index, -1.0, 1.0, TensorOptions{dtype, device});
  out.backward(seed);
  Evaluated e{out.detach(), {}};
  for (const Tensor& x : xs) e.grads.push_back(x.grad());
  return e;
}

/// CHECKs allclose(got, ref), reporting the first offending element.
void check_close(const Tensor& got, const Tensor& ref, double rtol, double atol) {
  std::string why;
  const bool close = allclose(got, ref, rtol, atol, &why);
  INFO(why);
  CHECK(close);
}

/// Runs `body` for every case, turning an exception into a failed check that names the case.
template <class F>
void for_each_case(F&& body) {
  const auto& cases = op_cases();
  REQUIRE(cases.size() > 100);
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i << ": " << cases[i].name);
    try {
      body(cases[i], i);
    } catch (const std::exception& e) {
      FAIL_CHECK("threw: " << e.what());
    }
  }
}

/// f32 on `device` against f64 on the CPU: output and every input gradient.
void check_against_f64(const OpCase& c, size_t index, Device device) {
  const Evaluated ref = evaluate(c, index, DType::f64, Device::cpu());
  const Evaluated got = evaluate(c, index, DType::f32, device);
  CHECK(got.out.device() == device);
  CHECK(got.out.dtype() == DType::f32);
  INFO("rtol " << c.tol.rtol << " atol " << c.tol.atol);
  check_close(got.out, ref.out, c.tol.rtol, c.tol.atol);
  for (size_t j = 0; j < ref.grads.size(); ++j) {
    INFO("gradient of input " << j);
    REQUIRE(got.grads[j].defined());
    CHECK(got.grads[j].device() == device);
    check_close(got.grads[j], ref.grads[j], c.tol.rtol, c.tol.atol);
  }
}

}  // namespace

TEST_CASE("op harness: f64 forward matches the naive loop reference", "[core][ops]") {
  for_each_case([](const OpCase& c, size_t i) {
    const std::vector<Tensor> xs = make_inputs(c, i, DType::f64, Device::cpu(), false);
    const Tensor got = run_case(c, xs);
    const Tensor ref = run_naive(c, xs);
    // Both in double from the same values: only the summation order (and 1/k vs /k in mean) differs,
    // <= k * 2^-53 relative, far below 1e-10 for k <= 1e6.
    check_close(got, ref, 1e-10, 1e-12);
  });
}

TEST_CASE("op harness: f64 gradients match central finite differences", "[core][ops][gradcheck]") {
  for_each_case([](const OpCase& c, size_t i) {
    if (!c.gradcheck) return;
    const std::vector<Tensor> xs = make_inputs(c, i, DType::f64, Device::cpu(), false);
    // Scalar objective sum(w * f(x)) with fixed random weights w, so every output element counts
    // with a different weight (a plain sum would hide e.g. a permuted gradient).
    const Shape out_shape = run_case(c, xs).shape();
    const Tensor w = random_input(out_shape, 0xBEEFull + i, -1.0, 1.0, TensorOptions{}.set_dtype(DType::f64));
    const double err = gradcheck([&](const std::vector<Tensor>& x) { return sum(run_case(c, x) * w); }, xs, 1e-6);
    // Central differences with h = 1e-6 in f64: truncation h^2 |f'''| / 6 ~ 1e-12 and rounding
    // eps64 |f| / h ~ 1e-10 * |f| (|f| <= ~30 here), so a correct gradient is within ~1e-8 relative;
    // 1e-6 leaves a 100x margin while any wrong formula is off by O(1).
    CHECK(err < 1e-6);
  });
}

TEST_CASE("op harness: f32 forward and backward on the CPU match the f64 reference", "[core][ops]") {
  for_each_case([](const OpCase& c, size_t i) { check_against_f64(c, i, Device::cpu()); });
}

TEST_CASE("op harness: f32 forward and backward on CUDA match the CPU f64 reference", "[core][ops][cuda]") {
  if (!has_cuda()) {
    WARN("no CUDA device (emulated or real) available: CUDA op comparison not run");
    return;
  }
  for_each_case([](const OpCase& c, size_t i) { check_against_f64(c, i, Device::cuda(0)); });
}

TEST_CASE("the harness itself fails on a wrong gradient or a wrong value", "[core][ops]") {
  // f(x) = sum(x * detach(x)) has true gradient 2x, but backward only sees the first factor (x):
  // gradcheck must report an O(1) relative error.
  const Tensor x = random_input({5}, 77, 0.5, 1.5, TensorOptions{}.set_dtype(DType::f64));
  const double err = gradcheck([](const std::vector<Tensor>& v) { return sum(v[0] * v[0].detach()); }, {x});
  CHECK(err > 0.1);
  CHECK(gradcheck([](const std::vector<Tensor>& v) { return sum(v[0] * v[0]); }, {x}) < 1e-8);
  std::string why;
  CHECK_FALSE(allclose(x, x * (1.0 + 2e-5), 1e-5, 0.0, &why));
  CHECK_THAT(why, Catch::Matchers::Contains("index 0"));
  CHECK(allclose(x, x * (1.0 + 5e-6), 1e-5, 0.0));
  CHECK_FALSE(allclose(x, x.reshape({5, 1}), 1.0, 1.0, &why));
  CHECK_THAT(why, Catch::Matchers::Contains("[5, 1]"));
}
