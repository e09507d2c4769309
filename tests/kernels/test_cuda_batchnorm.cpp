/// @file tests/kernels/test_cuda_batchnorm.cpp @brief The CUDA batch-norm kernels against the CPU backend, also with grids capped at 2 blocks so that every block loops over several channels.
//
// Tolerances: the statistics are an f32 Welford merge on CUDA and a double two-pass on the CPU:
// sum_tolerance(N*S). The backward sums accumulate in double on both, in different orders: 1e-6.
// normalize, dx and the running-statistics update round exactly like the CPU (explicit fmaf): 0 ulp
// in the emulator, 1 ulp on a GPU (IEEE sqrtf/division there too, but allowed a last-bit difference).
#include <catch2/catch.hpp>

#include "kernels/batchnorm.h"
#include "tests/harness/op_cases.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {

/// allclose with the failing index in the report.
void check_close(const Tensor& got, const Tensor& want, double rtol, double atol) {
  std::string why;
  const bool ok = test::allclose(got, want, rtol, atol, &why);
  INFO(why);
  CHECK(ok);
}

Tensor on_cuda(const Tensor& t) { return t.to(test::kCuda); }

}  // namespace

TEST_CASE("cuda batch-norm kernels match the CPU when blocks loop over several channels", "[cuda][bn]") {
  if (!test::has_cuda()) {
    SUCCEED("no CUDA device");
    return;
  }
  const int64_t allowed = test::cuda_emulated() ? 0 : 1;
  // [N, C, S...]: per-channel blocks of 224, 128, 96 and 256 threads (7, 4, 3 and 8 warps; the last
  // strides over 600 values per channel), and 600 channels (the running update's grid-stride loop).
  const std::vector<Shape> shapes{{4, 5, 50}, {3, 7, 6, 6}, {70, 9}, {2, 3, 300}, {2, 600}};
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    for (const Shape& shape : shapes) {
      INFO(grid.describe() << ", input " << shape_str(shape));
      const int64_t c = shape[1], m = shape_numel(shape) / c;
      const Tensor x = test::random_input(shape, 40, -1.0, 3.0), dy = test::random_input(shape, 41);
      const Tensor w = test::random_input({c}, 42, 0.5, 1.5), b = test::random_input({c}, 43);
      Tensor mean = empty({c}), var = empty({c}), mean_g = empty({c}, test::kOnCuda), var_g = empty({c}, test::kOnCuda);
      kernels::batch_norm_stats(x, mean, var);
      kernels::batch_norm_stats(on_cuda(x), mean_g, var_g);
      const test::Tolerance stats = test::sum_tolerance(m);
      check_close(mean_g, mean, stats.rtol, stats.atol);
      check_close(var_g, var, stats.rtol, stats.atol);

      Tensor y = empty(shape), y_g = empty(shape, test::kOnCuda);
      kernels::batch_norm_normalize(x, mean, var, w, b, 1e-5, y);
      kernels::batch_norm_normalize(on_cuda(x), on_cuda(mean), on_cuda(var), on_cuda(w), on_cuda(b), 1e-5, y_g);
      CHECK(test::max_ulp(y_g, y) <= allowed);

      Tensor sd = empty({c}), sdx = empty({c}), sd_g = empty({c}, test::kOnCuda), sdx_g = empty({c}, test::kOnCuda);
      kernels::batch_norm_backward_reduce(dy, x, mean, var, 1e-5, sd, sdx);
      kernels::batch_norm_backward_reduce(on_cuda(dy), on_cuda(x), on_cuda(mean), on_cuda(var), 1e-5, sd_g, sdx_g);
      check_close(sd_g, sd, 1e-6, 1e-6);
      check_close(sdx_g, sdx, 1e-6, 1e-6);

      Tensor dx = empty(shape), dx_g = empty(shape, test::kOnCuda);
      kernels::batch_norm_backward_input(dy, x, mean, var, w, sd, sdx, 1e-5, true, dx);
      kernels::batch_norm_backward_input(on_cuda(dy), on_cuda(x), on_cuda(mean), on_cuda(var), on_cuda(w),
                                         on_cuda(sd), on_cuda(sdx), 1e-5, true, dx_g);
      CHECK(test::max_ulp(dx_g, dx) <= allowed);

      Tensor rm = test::random_input({c}, 44), rv = test::random_input({c}, 45, 0.5, 1.5);
      Tensor rm_g = on_cuda(rm), rv_g = on_cuda(rv);
      Tensor nbt = zeros(Shape{}, TensorOptions{}.set_dtype(DType::i64));
      Tensor nbt_g = zeros(Shape{}, TensorOptions{DType::i64, test::kCuda});
      kernels::batch_norm_update_running(rm, rv, nbt, mean, var, 0.1, 1.25);
      kernels::batch_norm_update_running(rm_g, rv_g, nbt_g, on_cuda(mean), on_cuda(var), 0.1, 1.25);
      CHECK(test::max_ulp(rm_g, rm) <= allowed);
      CHECK(test::max_ulp(rv_g, rv) <= allowed);
      CHECK(nbt_g.item() == 1.0);  // counted once, not once per block
    }
  }
}
