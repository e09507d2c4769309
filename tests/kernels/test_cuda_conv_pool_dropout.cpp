/// @file tests/kernels/test_cuda_conv_pool_dropout.cpp @brief The grid-stride CUDA kernels of convolution (im2col, col2im), max pooling and dropout against the CPU backend with grids capped at 2 blocks, so every thread takes several steps on small inputs.
//
// The launchers' own caps are covered by tests/nn (conv, pool, dropout on every device). Every result
// here must equal the CPU's bitwise: copies, zeros and the same additions in the same order (col2im,
// pool backward), comparisons (pool forward), and one product per kept element with the same Philox
// draws (dropout).
#include <catch2/catch.hpp>

#include "kernels/conv.h"
#include "kernels/dropout.h"
#include "kernels/pool.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {
constexpr unsigned kCap = 2;  // blocks per launch: 512 threads for the 2000 to 20000 elements below
}  // namespace

TEST_CASE("cuda im2col and col2im equal the CPU bitwise when threads take several grid-stride steps",
          "[cuda][conv]") {
  if (!test::cuda_or_warn()) return;
  const test::GridCap grid(kCap);
  // [N, C, H, W], kernel, stride, padding.
  for (const auto& [x_shape, k, stride, pad] : std::vector<std::tuple<Shape, int64_t, int64_t, int64_t>>{
           {{2, 3, 13, 11}, 3, 1, 1}, {{3, 2, 16, 16}, 4, 2, 0}}) {
    const kernels::Conv2dGeometry g = kernels::conv2d_geometry(x_shape, k, k, stride, stride, pad, pad);
    const Shape cs{g.batch, g.col_rows(), g.col_cols()};
    INFO("input " << shape_str(x_shape) << ", column matrix " << shape_str(cs));
    const Tensor x = test::random_input(x_shape, 80), cv = test::random_input(cs, 81);
    Tensor col = empty(cs), col_g = empty(cs, test::kOnCuda);
    kernels::im2col(x, col, g);
    kernels::im2col(x.to(test::kCuda), col_g, g);
    CHECK(test::max_ulp(col_g, col) == 0);
    Tensor im = empty(x_shape), im_g = empty(x_shape, test::kOnCuda);
    kernels::col2im(cv, im, g);
    kernels::col2im(cv.to(test::kCuda), im_g, g);
    CHECK(test::max_ulp(im_g, im) == 0);
  }
}

TEST_CASE("cuda max pooling equals the CPU bitwise when threads take several grid-stride steps", "[cuda][pool]") {
  if (!test::cuda_or_warn()) return;
  const test::GridCap grid(kCap);
  const Shape xs{2, 3, 25, 23};
  for (const auto& [k, stride, pad] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{2, 1, 0}, {3, 2, 1}}) {
    INFO("kernel " << k << ", stride " << stride << ", padding " << pad);
    const kernels::Pool2dGeometry g = kernels::max_pool2d_geometry(xs, k, k, stride, stride, pad, pad);
    const Shape ys{xs[0], xs[1], g.out_h, g.out_w};
    const Tensor x = test::random_input(xs, 82), gy = test::random_input(ys, 83);
    Tensor y = empty(ys), idx = empty(ys, TensorOptions{}.set_dtype(DType::i64));
    Tensor y_g = empty(ys, test::kOnCuda), idx_g = empty(ys, TensorOptions{DType::i64, test::kCuda});
    kernels::max_pool2d_forward(x, y, idx, g);
    kernels::max_pool2d_forward(x.to(test::kCuda), y_g, idx_g, g);
    CHECK(test::max_ulp(y_g, y) == 0);
    CHECK(idx_g.to_vector<int64_t>() == idx.to_vector<int64_t>());
    Tensor gx = empty(xs), gx_g = empty(xs, test::kOnCuda);
    kernels::max_pool2d_backward(gy, idx, gx, g);
    kernels::max_pool2d_backward(gy.to(test::kCuda), idx_g, gx_g, g);
    CHECK(test::max_ulp(gx_g, gx) == 0);
  }
}

TEST_CASE("cuda dropout keeps the CPU's elements when threads take several grid-stride steps", "[cuda][dropout]") {
  if (!test::cuda_or_warn()) return;
  const test::GridCap grid(kCap);
  for (int64_t n : {int64_t{1}, int64_t{5003}}) {
    INFO("n = " << n);
    const Tensor x = test::random_input({n}, 84);
    Tensor y = empty({n}), y_g = empty({n}, test::kOnCuda);
    kernels::dropout(x, y, 0.3, 5, 6);
    kernels::dropout(x.to(test::kCuda), y_g, 0.3, 5, 6);
    CHECK(test::max_ulp(y_g, y) == 0);
  }
}
