/// @file tests/kernels/test_cuda_index64.cpp @brief The 64-bit index instances of the CUDA kernels that have a 32-bit fast path, forced on small tensors (ScopedInt64Index), against the CPU backend bitwise.
//
// Only tensors of 2^31 elements or more select these instances by size, and such tensors do not fit
// the test machines; forcing them here keeps the path that large tensors take tested. Every kernel
// below equals the CPU bitwise on its 32-bit path (its own test file), so exact equality is required
// here too: both paths compute the same element mapping and the same arithmetic.
#include <catch2/catch.hpp>

#include <tuple>
#include <vector>

#include "kernels/batchnorm.h"
#include "kernels/conv.h"
#include "kernels/cuda/index_math.h"
#include "kernels/elementwise.h"
#include "kernels/pool.h"
#include "kernels/reduce.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {

Tensor on_gpu(const Tensor& t) { return t.to(test::kCuda); }

void check_same(const Tensor& got, const Tensor& want) {
  std::string where;
  const int64_t ulp = test::max_ulp(got, want, &where);
  INFO(where);
  CHECK(ulp == 0);
}

}  // namespace

TEST_CASE("cuda kernels with a 32-bit index path equal the CPU on their forced 64-bit path", "[cuda][index]") {
  if (!test::cuda_or_warn()) return;
  const cuda::testing::ScopedInt64Index force64;
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    INFO(grid.str());
    {  // im2col / col2im
      for (const auto& [xs, k, stride, pad] : std::vector<std::tuple<Shape, int64_t, int64_t, int64_t>>{
               {{2, 3, 13, 11}, 3, 1, 1}, {{3, 2, 16, 16}, 4, 2, 0}}) {
        const kernels::Conv2dGeometry g = kernels::conv2d_geometry(xs, k, k, stride, stride, pad, pad);
        const Shape cs{g.batch, g.col_rows(), g.col_cols()};
        const Tensor x = test::random_input(xs, 90), cv = test::random_input(cs, 91);
        Tensor col = empty(cs), col_g = empty(cs, test::kOnCuda), im = empty(xs), im_g = empty(xs, test::kOnCuda);
        kernels::im2col(x, col, g);
        kernels::im2col(on_gpu(x), col_g, g);
        check_same(col_g, col);
        kernels::col2im(cv, im, g);
        kernels::col2im(on_gpu(cv), im_g, g);
        check_same(im_g, im);
      }
    }
    {  // max pooling forward and backward
      const Shape xs{2, 3, 25, 23};
      const kernels::Pool2dGeometry g = kernels::max_pool2d_geometry(xs, 3, 3, 2, 2, 1, 1);
      const Shape ys{xs[0], xs[1], g.out_h, g.out_w};
      const Tensor x = test::random_input(xs, 92), gy = test::random_input(ys, 93);
      Tensor y = empty(ys), idx = empty(ys, TensorOptions{}.set_dtype(DType::i64));
      Tensor y_g = empty(ys, test::kOnCuda), idx_g = empty(ys, TensorOptions{DType::i64, test::kCuda});
      kernels::max_pool2d_forward(x, y, idx, g);
      kernels::max_pool2d_forward(on_gpu(x), y_g, idx_g, g);
      check_same(y_g, y);
      CHECK(idx_g.to_vector<int64_t>() == idx.to_vector<int64_t>());
      Tensor gx = empty(xs), gx_g = empty(xs, test::kOnCuda);
      kernels::max_pool2d_backward(gy, idx, gx, g);
      kernels::max_pool2d_backward(on_gpu(gy), idx_g, gx_g, g);
      check_same(gx_g, gx);
    }
    {  // batch-norm normalize and dx
      const Shape xs{3, 5, 7, 9};
      const Tensor x = test::random_input(xs, 94, -1.0, 3.0), dy = test::random_input(xs, 95);
      const Tensor w = test::random_input({5}, 96, 0.5, 1.5), b = test::random_input({5}, 97);
      Tensor mean = empty({5}), var = empty({5}), sd = empty({5}), sdx = empty({5});
      kernels::batch_norm_stats(x, mean, var);
      kernels::batch_norm_backward_reduce(dy, x, mean, var, 1e-5, sd, sdx);
      Tensor y = empty(xs), y_g = empty(xs, test::kOnCuda), dx = empty(xs), dx_g = empty(xs, test::kOnCuda);
      kernels::batch_norm_normalize(x, mean, var, w, b, 1e-5, y);
      kernels::batch_norm_normalize(on_gpu(x), on_gpu(mean), on_gpu(var), on_gpu(w), on_gpu(b), 1e-5, y_g);
      check_same(y_g, y);
      kernels::batch_norm_backward_input(dy, x, mean, var, w, sd, sdx, 1e-5, true, dx);
      kernels::batch_norm_backward_input(on_gpu(dy), on_gpu(x), on_gpu(mean), on_gpu(var), on_gpu(w), on_gpu(sd),
                                         on_gpu(sdx), 1e-5, true, dx_g);
      check_same(dx_g, dx);
    }
    {  // strided copy, unary, unary backward and broadcast binary
      const Tensor a = test::random_input({7, 11, 13}, 98), b = test::random_input({11, 1}, 99, 0.5, 1.5);
      const Tensor at = a.permute({2, 0, 1}), at_g = on_gpu(a).permute({2, 0, 1});  // strided views
      Tensor c = empty(at.shape()), c_g = empty(at.shape(), test::kOnCuda);
      kernels::copy(at, c);
      kernels::copy(at_g, c_g);
      check_same(c_g, c);
      Tensor u = empty(at.shape()), u_g = empty(at.shape(), test::kOnCuda);
      kernels::unary(kernels::unary_op_v<kernels::op::Tanh>, at, u);
      kernels::unary(kernels::unary_op_v<kernels::op::Tanh>, at_g, u_g);
      check_same(u_g, u);
      Tensor gu = empty(at.shape()), gu_g = empty(at.shape(), test::kOnCuda);
      kernels::unary_backward(kernels::unary_op_v<kernels::op::Relu>, at, u, at, gu);
      kernels::unary_backward(kernels::unary_op_v<kernels::op::Relu>, at_g, u_g, at_g, gu_g);
      check_same(gu_g, gu);
      Tensor s = empty(a.shape()), s_g = empty(a.shape(), test::kOnCuda);
      kernels::binary(kernels::binary_op_v<kernels::op::Div>, a, b.expand(a.shape()), s);
      kernels::binary(kernels::binary_op_v<kernels::op::Div>, on_gpu(a), on_gpu(b).expand(a.shape()), s_g);
      check_same(s_g, s);
    }
    {  // max backward scatter
      const int64_t outer = 4, k = 31, inner = 33;
      const Tensor x = test::random_input({outer * k * inner}, 100), gy = test::random_input({outer, inner}, 101);
      Tensor out = empty({outer, inner}), idx = empty({outer, inner}, TensorOptions{}.set_dtype(DType::i64));
      kernels::reduce(kernels::ReduceOp::Max, x, outer, k, inner, 1.0, out, &idx);
      Tensor gx = zeros({outer * k * inner}), gx_g = zeros({outer * k * inner}, test::kOnCuda);
      kernels::reduce_max_backward(gy, idx, outer, k, inner, gx);
      kernels::reduce_max_backward(on_gpu(gy), on_gpu(idx), outer, k, inner, gx_g);
      check_same(gx_g, gx);
    }
  }
}

TEST_CASE("cuda index override: ScopedInt64Index switches the launchers' choice and restores it", "[cuda][index]") {
  CHECK(cuda::use_int32_index(true));
  {
    const cuda::testing::ScopedInt64Index force64;
    CHECK_FALSE(cuda::use_int32_index(true));
    CHECK_FALSE(cuda::use_int32_index(false));
  }
  CHECK(cuda::use_int32_index(true));
  CHECK_FALSE(cuda::use_int32_index(false));
}
