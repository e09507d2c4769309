/// @file tests/kernels/test_cuda_batchnorm.cpp @brief The CUDA batch-norm kernels against the CPU backend, also with grids capped at 2 blocks so that every block loops over several channels.
//
// Tolerances: the statistics are an f32 Welford merge on CUDA and a double two-pass on the CPU:
// sum_tolerance(N*S). The backward sums accumulate in double on both, in different orders: 1e-6.
// normalize, dx and the running-statistics update round exactly like the CPU (explicit fmaf): 0 ulp
// in the emulator, 1 ulp on a GPU (IEEE sqrtf/division there too, but allowed a last-bit difference).
#include <catch2/catch.hpp>

#include <optional>

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
  if (!test::cuda_or_warn()) return;
  const int64_t allowed = test::cuda_emulated() ? 0 : 1;
  // [N, C, S...]: per-channel blocks of 224, 128, 96 and 256 threads (7, 4, 3 and 8 warps; the last
  // strides over 600 values per channel), and 600 channels (the running update's grid-stride loop).
  const std::vector<Shape> shapes{{4, 5, 50}, {3, 7, 6, 6}, {70, 9}, {2, 3, 300}, {2, 600}};
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    for (const Shape& shape : shapes) {
      INFO(grid.str() << ", input " << shape_str(shape));
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

namespace {

/// The four per-channel results of the two reductions of one input, on one device.
struct BnReductions {
  Tensor mean, var, sum_dy, sum_dy_xhat;
};

BnReductions bn_reductions(const Tensor& x, const Tensor& dy, const Tensor& mean_in, const Tensor& var_in) {
  const int64_t c = x.size(1);
  const TensorOptions opts{DType::f32, x.device()};
  BnReductions r{empty({c}, opts), empty({c}, opts), empty({c}, opts), empty({c}, opts)};
  kernels::batch_norm_stats(x, r.mean, r.var);
  // The backward sums use the given statistics, so that both devices reduce the same xhat.
  kernels::batch_norm_backward_reduce(dy, x, mean_in, var_in, 1e-5, r.sum_dy, r.sum_dy_xhat);
  return r;
}

}  // namespace

TEST_CASE("cuda batch-norm reductions split a channel over many blocks, deterministically under every grid cap",
          "[cuda][bn]") {
  if (!test::cuda_or_warn()) return;
  // The CUDA reductions cut each channel's N*S values into slices of at least 2048 values (about 4096
  // (channel, slice) blocks in all, kernels/cuda/batchnorm.cu plan_slices), then merge a channel's
  // slices in order. Per shape, N*S and the slicing: 6068 -> 2 slices of 3034 (S = 1517: slices start
  // inside a row); [N, C] with S = 1 (strided reads), 9000 -> 4 of 2250; 29100 -> 14 of 2079 (the
  // last one 2073, S = 9700); 70000 -> 34 of 2059 (more slices than a merge warp has lanes); 20
  // channels of 2 slices (the merge kernel's 8 warps per block loop over channels under a cap).
  const std::vector<Shape> shapes{{4, 3, 37, 41}, {9000, 4}, {3, 2, 100, 97}, {1, 2, 70000}, {2, 20, 2100}};
  const int64_t allowed = test::cuda_emulated() ? 0 : 1;
  for (const Shape& shape : shapes) {
    INFO("input " << shape_str(shape));
    const int64_t c = shape[1], m = shape_numel(shape) / c;
    const Tensor x = test::random_input(shape, 50, -1.0, 3.0), dy = test::random_input(shape, 51);
    const Tensor w = test::random_input({c}, 52, 0.5, 1.5), b = test::random_input({c}, 53);
    Tensor mean = empty({c}), var = empty({c});
    kernels::batch_norm_stats(x, mean, var);
    const BnReductions ref = bn_reductions(x, dy, mean, var);
    std::optional<BnReductions> first;  // the uncapped CUDA run, which every other run must equal bitwise
    for (unsigned cap : {0u, 2u, 3u, 0u}) {
      const test::GridCap grid(cap);
      INFO(grid.str());
      const BnReductions g = bn_reductions(on_cuda(x), on_cuda(dy), on_cuda(mean), on_cuda(var));
      // Same tolerances as the one-block-per-channel kernels (file comment): the statistics are an f32
      // Welford merge against the CPU's double two-pass sums, sum_tolerance(N*S); the backward sums
      // accumulate in double on both devices, in different orders, 1e-6.
      const test::Tolerance stats = test::sum_tolerance(m);
      check_close(g.mean, ref.mean, stats.rtol, stats.atol);
      check_close(g.var, ref.var, stats.rtol, stats.atol);
      check_close(g.sum_dy, ref.sum_dy, 1e-6, 1e-6);
      check_close(g.sum_dy_xhat, ref.sum_dy_xhat, 1e-6, 1e-6);
      if (!first) {
        first = g;
      } else {  // the slicing depends on the shape only: the grid (cap, device) changes no bit
        CHECK(test::max_ulp(g.mean, first->mean) == 0);
        CHECK(test::max_ulp(g.var, first->var) == 0);
        CHECK(test::max_ulp(g.sum_dy, first->sum_dy) == 0);
        CHECK(test::max_ulp(g.sum_dy_xhat, first->sum_dy_xhat) == 0);
      }
    }
    // The elementwise passes over these larger tensors (32-bit index path): the CPU's bits.
    Tensor y = empty(shape), y_g = empty(shape, test::kOnCuda);
    kernels::batch_norm_normalize(x, mean, var, w, b, 1e-5, y);
    kernels::batch_norm_normalize(on_cuda(x), on_cuda(mean), on_cuda(var), on_cuda(w), on_cuda(b), 1e-5, y_g);
    CHECK(test::max_ulp(y_g, y) <= allowed);
    Tensor dx = empty(shape), dx_g = empty(shape, test::kOnCuda);
    kernels::batch_norm_backward_input(dy, x, mean, var, w, ref.sum_dy, ref.sum_dy_xhat, 1e-5, true, dx);
    kernels::batch_norm_backward_input(on_cuda(dy), on_cuda(x), on_cuda(mean), on_cuda(var), on_cuda(w),
                                       on_cuda(ref.sum_dy), on_cuda(ref.sum_dy_xhat), 1e-5, true, dx_g);
    CHECK(test::max_ulp(dx_g, dx) <= allowed);
  }
}

TEST_CASE("cuda batch-norm backward sums over channels without values are zero, as on the CPU", "[cuda][bn]") {
  if (!test::cuda_or_warn()) return;
  const Shape shape{0, 3, 4};  // N = 0: no values per channel (the statistics reject it; the sums are 0)
  const Tensor x = empty(shape), dy = empty(shape), mean = zeros({3}), var = ones({3});
  Tensor sd = full({3}, 5.0), sdx = full({3}, 5.0);
  Tensor sd_g = full({3}, 5.0).to(test::kCuda), sdx_g = full({3}, 5.0).to(test::kCuda);
  kernels::batch_norm_backward_reduce(dy, x, mean, var, 1e-5, sd, sdx);
  kernels::batch_norm_backward_reduce(on_cuda(dy), on_cuda(x), on_cuda(mean), on_cuda(var), 1e-5, sd_g, sdx_g);
  CHECK(sd.to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(sd_g.to_vector<float>() == sd.to_vector<float>());
  CHECK(sdx_g.to_vector<float>() == sdx.to_vector<float>());
}
