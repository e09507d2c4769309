/// @file tests/distributed/test_sync_batchnorm.cpp @brief sync_batch_norm on a world of one: equals batch norm (forward, gradients, running stats), finite differences in f64, evaluation mode, errors.
#include <catch2/catch.hpp>

#include "distributed/sync_batchnorm.h"
#include "tests/distributed/bn_reference.h"
#include "tests/harness/backends.h"

using namespace ember;
using namespace ember::distributed;
using ember::test::allclose;
using ember::test::random_input;

namespace {
bool close(const Tensor& a, const Tensor& b, double rtol, double atol) {
  std::string why;
  const bool ok = allclose(a, b, rtol, atol, &why);
  INFO(why);
  CHECK(ok);
  return ok;
}
}  // namespace

TEST_CASE("sync_batch_norm on one rank equals batch norm: output, gradients, running stats", "[distributed][bn]") {
  SingleProcessGroup pg;
  const TensorOptions rg = TensorOptions{}.set_requires_grad(true);
  for (const Shape& shape : {Shape{6, 3}, Shape{6, 3, 2, 2}}) {
    INFO("input " << shape_str(shape));
    Tensor x = random_input(shape, 1, -2.0, 3.0, rg), xr = x.detach().clone().set_requires_grad(true);
    Tensor w = random_input(Shape{3}, 2, 0.5, 1.5, rg), wr = w.detach().clone().set_requires_grad(true);
    Tensor b = random_input(Shape{3}, 3, -0.5, 0.5, rg), br = b.detach().clone().set_requires_grad(true);
    Tensor r = random_input(shape, 4);  // upstream gradient
    Tensor rm = zeros(Shape{3}), rv = ones(Shape{3});
    Tensor nbt = zeros(Shape{}, TensorOptions{}.set_dtype(DType::i64));
    Tensor y = sync_batch_norm(x, w, b, rm, rv, nbt, true, pg, {.eps = 1e-5, .momentum = 0.1});
    Tensor mean_ref, var_ref;
    Tensor yr = ember::test::dist::reference_batch_norm(xr, wr, br, 1e-5, &mean_ref, &var_ref);
    // fp32: normalized values are O(1) sums over <= 24 samples; 1e-5 relative plus 1e-5 absolute.
    close(y, yr, 1e-5, 1e-5);
    sum(y * r).backward();
    sum(yr * r).backward();
    close(x.grad(), xr.grad(), 1e-4, 1e-5);  // dx cancels three O(1) terms: a few ulps of headroom
    close(w.grad(), wr.grad(), 1e-5, 1e-5);
    close(b.grad(), br.grad(), 1e-5, 1e-5);
    close(rm, mean_ref * 0.1, 1e-5, 1e-6);
    close(rv, var_ref * 0.1 + 0.9, 1e-5, 1e-6);
    CHECK(nbt.item() == 1.0);
  }
}

TEST_CASE("sync_batch_norm gradients match finite differences (f64)", "[distributed][bn]") {
  SingleProcessGroup pg;
  const TensorOptions f64 = TensorOptions{}.set_dtype(DType::f64);
  Tensor x = random_input(Shape{4, 2, 3}, 5, -1.0, 1.0, f64);
  Tensor w = random_input(Shape{2}, 6, 0.5, 1.5, f64), b = random_input(Shape{2}, 7, -0.5, 0.5, f64);
  Tensor r = random_input(Shape{4, 2, 3}, 8, -1.0, 1.0, f64);
  const double err = ember::test::gradcheck(
      [&](const std::vector<Tensor>& in) {
        return sum(sync_batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), Tensor(), true, pg) * r);
      },
      {x, w, b});
  CHECK(err < 1e-6);  // central differences with eps 1e-6 in f64: truncation + rounding ~1e-8
}

TEST_CASE("sync_batch_norm in evaluation uses the running statistics and communicates nothing", "[distributed][bn]") {
  SingleProcessGroup pg;
  Tensor x = random_input(Shape{2, 3}, 9);
  Tensor rm = from_vector(std::vector<float>{0.5f, -1.f, 0.f}, Shape{3});
  Tensor rv = from_vector(std::vector<float>{4.f, 1.f, 0.25f}, Shape{3});
  Tensor w = from_vector(std::vector<float>{2.f, 1.f, 1.f}, Shape{3}), b = from_vector(std::vector<float>{0.f, 1.f, 0.f}, Shape{3});
  Tensor y = sync_batch_norm(x, w, b, rm, rv, Tensor(), false, pg, {.eps = 0.0001});
  const auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  const double m[3] = {0.5, -1.0, 0.0}, v[3] = {4.0, 1.0, 0.25}, ww[3] = {2, 1, 1}, bb[3] = {0, 1, 0};
  for (size_t i = 0; i < 6; ++i) {
    const size_t c = i % 3;
    CHECK(yv[i] == Approx((xv[i] - m[c]) / std::sqrt(v[c] + 0.0001) * ww[c] + bb[c]).epsilon(1e-5));
  }
  CHECK(pg.stats().all_reduce == 0);
  CHECK(rm.to_vector<float>() == std::vector<float>{0.5f, -1.f, 0.f});  // untouched
}

TEST_CASE("sync_batch_norm rejects bad input", "[distributed][bn]") {
  SingleProcessGroup pg;
  Tensor x = zeros(Shape{4, 3});
  Tensor w = ones(Shape{3}), b = zeros(Shape{3});
  CHECK_THROWS_WITH(sync_batch_norm(zeros(Shape{4}), w, b, {}, {}, {}, true, pg),
                    Catch::Contains("expected input [N, C] or [N, C, *], got f32[4]"));
  CHECK_THROWS_WITH(sync_batch_norm(x, ones(Shape{4}), b, {}, {}, {}, true, pg),
                    Catch::Contains("f32[3] on cpu") && Catch::Contains("got f32[4]"));
  CHECK_THROWS_WITH(sync_batch_norm(x, w, Tensor(), {}, {}, {}, true, pg), Catch::Contains("both be given"));
  CHECK_THROWS_WITH(sync_batch_norm(x, w, b, {}, {}, {}, false, pg), Catch::Contains("evaluation needs running"));
  CHECK_THROWS_WITH(sync_batch_norm(zeros(Shape{1, 3}), w, b, {}, {}, {}, true, pg),
                    Catch::Contains("more than 1 value per channel"));
  CHECK_THROWS_WITH(sync_batch_norm(x, w, b, {}, {}, {}, true, pg, {.eps = 1e-5, .momentum = 1.5}),
                    Catch::Contains("momentum must be in [0, 1], got 1.5"));
}
