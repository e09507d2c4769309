/// @file tests/kernels/test_cuda_layernorm.cpp @brief The CUDA layer-norm kernels against the CPU backend (odd rows, rows longer than a block, many backward chunks), under grid caps, and the same bits for every grid cap and run.
//
// Tolerances. Forward: the CPU computes the statistics in double, CUDA as an f32 Welford of x - x[0]
// merged over <= 256 threads (each rounding <= 1 ulp of |x - x[0]| <= 4 here, over n / 256 updates plus
// 13 merge levels): mean and rstd agree to 1e-5 relative (plus 1e-6 absolute for a mean near 0), and y
// = (x - mean) * rstd (|xhat| < 4) to 4e-5 absolute. Backward, fed the CPU's mean and rstd on both sides:
// the per-element expressions round identically (explicit fmaf / __fmul_rn), the row sums are doubles
// added in different orders and rounded to f32 once (<= 1 ulp of c1, c2), so dx agrees to 1e-5
// relative / 1e-6 absolute; dweight and dbias add the same f32 terms in double in different orders:
// 1e-6 relative (a few f32 ulps) and 1e-9 absolute for sums that cancel to nearly zero.
#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>

#include "kernels/layernorm.h"
#include "tests/harness/op_cases.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {

void check_close(const Tensor& got, const Tensor& want, double rtol, double atol) {
  std::string why;
  const bool ok = test::allclose(got, want, rtol, atol, &why);
  INFO(why);
  CHECK(ok);
}

Tensor on_cuda(const Tensor& t) { return t.to(test::kCuda); }

struct Outputs {
  Tensor y, mean, rstd, dx, dw, db;
};

/// Forward and backward on x's device; the backward reads `mean_in`/`rstd_in` (the CPU's) when given.
Outputs run(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy, const Tensor& mean_in,
            const Tensor& rstd_in) {
  const int64_t n = x.size(-1), rows = x.numel() / n;
  const TensorOptions o{DType::f32, x.device()};
  Outputs out{empty(x.shape(), o), empty({rows}, o), empty({rows}, o), empty(x.shape(), o), empty({n}, o),
              empty({n}, o)};
  kernels::layer_norm_forward(x, w, b, 1e-5, out.y, out.mean, out.rstd);
  const Tensor m = mean_in.defined() ? mean_in.to(x.device()) : out.mean;
  const Tensor r = rstd_in.defined() ? rstd_in.to(x.device()) : out.rstd;
  kernels::layer_norm_backward(dy, x, m, r, w, out.dx, out.dw, out.db);
  return out;
}

/// 0 when every tensor of a and b has the same bits.
int64_t max_ulp_all(const Outputs& a, const Outputs& b) {
  int64_t worst = 0;
  for (auto p : {&Outputs::y, &Outputs::mean, &Outputs::rstd, &Outputs::dx, &Outputs::dw, &Outputs::db})
    worst = std::max(worst, test::max_ulp(a.*p, b.*p));
  return worst;
}

}  // namespace

TEST_CASE("cuda layer-norm kernels match the CPU on odd and long rows, and give the same bits under every grid cap",
          "[cuda][layernorm]") {
  if (!test::cuda_or_warn()) return;
  // [rows, n]: one value; n = 1; below and just over a warp; rows of 300 and 1000 (longer than the
  // 256-thread block); 40 and 100 rows (2 and 6 backward chunks of 20 and 17 rows, with a short last
  // one); 37 rows of 257 (3 chunks, block of 256 + 1 strided value).
  const std::vector<Shape> shapes{{1, 1}, {3, 1}, {5, 7}, {7, 33}, {4, 300}, {2, 1000}, {40, 7}, {100, 64}, {37, 257}};
  for (const Shape& shape : shapes) {
    const int64_t n = shape.back();
    const Tensor x = test::random_input(shape, 50, -1.0, 3.0), dy = test::random_input(shape, 51);
    const Tensor w = test::random_input({n}, 52, 0.5, 1.5), b = test::random_input({n}, 53);
    const Outputs cpu = run(x, w, b, dy, Tensor(), Tensor());
    std::optional<Outputs> first;
    for (unsigned cap : test::kGridCaps) {
      const test::GridCap grid(cap);
      INFO(grid.str() << ", input " << shape_str(shape));
      const Outputs g = run(on_cuda(x), on_cuda(w), on_cuda(b), on_cuda(dy), cpu.mean, cpu.rstd);
      check_close(g.mean, cpu.mean, 1e-5, 1e-6);
      check_close(g.rstd, cpu.rstd, 1e-5, 0.0);
      check_close(g.y, cpu.y, 1e-5, 4e-5);
      check_close(g.dx, cpu.dx, 1e-5, 1e-6);
      check_close(g.dw, cpu.dw, 1e-6, 1e-9);
      check_close(g.db, cpu.db, 1e-6, 1e-9);
      // The reductions' order depends on the shape only: the same bits with 2 blocks as with the full
      // grid, and again on a second run.
      if (!first) first = g;
      CHECK(max_ulp_all(g, *first) == 0);
      CHECK(max_ulp_all(run(on_cuda(x), on_cuda(w), on_cuda(b), on_cuda(dy), cpu.mean, cpu.rstd), g) == 0);
    }
  }
}

TEST_CASE("cuda layer-norm kernels without weight or bias, and with only some gradients requested",
          "[cuda][layernorm]") {
  if (!test::cuda_or_warn()) return;
  const Shape shape{20, 45};
  const Tensor x = test::random_input(shape, 54, -2.0, 2.0), dy = test::random_input(shape, 55);
  Tensor y = empty(shape), mean = empty({20}), rstd = empty({20}), dx = empty(shape), none;
  kernels::layer_norm_forward(x, none, none, 1e-5, y, mean, rstd);
  kernels::layer_norm_backward(dy, x, mean, rstd, none, dx, none, none);
  Tensor yg = empty(shape, test::kOnCuda), mg = empty({20}, test::kOnCuda), rg = empty({20}, test::kOnCuda);
  Tensor dxg = empty(shape, test::kOnCuda), dbg = empty({45}, test::kOnCuda);
  kernels::layer_norm_forward(on_cuda(x), none, none, 1e-5, yg, mg, rg);
  check_close(yg, y, 1e-5, 4e-5);
  kernels::layer_norm_backward(on_cuda(dy), on_cuda(x), on_cuda(mean), on_cuda(rstd), none, dxg, none, none);
  check_close(dxg, dx, 1e-5, 1e-6);
  // dbias alone (no dx, no dweight): the column sums of dy.
  kernels::layer_norm_backward(on_cuda(dy), on_cuda(x), on_cuda(mean), on_cuda(rstd), none, none, none, dbg);
  const Tensor db_ref = sum(dy, {0});
  check_close(dbg, db_ref, 1e-6, 1e-6);
  // f64 has no CUDA kernel: a named error.
  const TensorOptions f64cuda{DType::f64, test::kCuda};
  Tensor x64 = empty(shape, f64cuda), y64 = empty(shape, f64cuda), m64 = empty({20}, f64cuda),
         r64 = empty({20}, f64cuda);
  CHECK_THROWS_WITH(kernels::layer_norm_forward(x64, none, none, 1e-5, y64, m64, r64),
                    Catch::Matchers::Contains("f32 only"));
}
