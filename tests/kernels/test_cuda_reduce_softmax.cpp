/// @file tests/kernels/test_cuda_reduce_softmax.cpp @brief CUDA reductions (sum, max/argmax, max backward) and softmax / log-softmax (forward, backward) against the CPU backend.
//
// Tolerances: both backends accumulate sums in double, so sums agree to relative 1e-5 with room to
// spare (they differ only in the order of double additions). Max/argmax are exact. Softmax uses expf
// on the GPU and exp in double on the CPU for the row sum: relative 1e-5 plus absolute 1e-6 (the
// absolute part covers log-softmax values near 0, where log(sum) carries the sum's ~1e-7 relative
// error as an absolute one).
#include <catch2/catch.hpp>

#include <limits>

#include "kernels/reduce.h"
#include "kernels/softmax.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;
using kernels::ReduceOp;

namespace {

struct Reduced {
  Tensor out, idx;
};

Reduced reduce_on(ReduceOp op, const Tensor& x, int64_t outer, int64_t k, int64_t inner, double scale) {
  Reduced r{empty({outer, inner}, TensorOptions{DType::f32, x.device()}),
            empty({outer, inner}, TensorOptions{DType::i64, x.device()})};
  kernels::reduce(op, x, outer, k, inner, scale, r.out, op == ReduceOp::Max ? &r.idx : nullptr);
  return r;
}

struct View {
  int64_t outer, k, inner;
};

// Row shapes (inner == 1) on both sides of the warp/block switch at K = 4096, and column shapes.
const std::vector<View> kViews{{1, 1, 1},  {31, 33, 1}, {33, 31, 1},  {3, 5000, 1}, {1, 100003, 1},
                               {4, 31, 33}, {1, 33, 31}, {33, 1, 31}, {2, 7, 1000}};

}  // namespace

TEST_CASE("cuda sum matches the CPU (warp rows, block rows, columns; scaled)", "[cuda][reduce]") {
  if (!test::cuda_or_warn()) return;
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);  // cap 2: warp rows, block rows and columns loop
    INFO(grid.str());
    for (const View& v : kViews) {
      INFO("view [" << v.outer << ", " << v.k << ", " << v.inner << "]");
      const Tensor x = test::random_input({v.outer * v.k * v.inner}, 50, -1.0, 2.0);
      const Reduced cpu = reduce_on(ReduceOp::Sum, x, v.outer, v.k, v.inner, 0.25);
      const Reduced gpu = reduce_on(ReduceOp::Sum, x.to(test::kCuda), v.outer, v.k, v.inner, 0.25);
      std::string why;
      const bool close = test::allclose(gpu.out, cpu.out, 1e-5, 0.0, &why);
      INFO(why);
      CHECK(close);
    }
  }
}

TEST_CASE("cuda max returns the CPU's values and first-maximum indices; NaN propagates", "[cuda][reduce]") {
  if (!test::cuda_or_warn()) return;
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    INFO(grid.str());
    for (const View& v : kViews) {
      INFO("view [" << v.outer << ", " << v.k << ", " << v.inner << "]");
      // Values on a coarse grid (multiples of 1/8 in [-2, 2]) so rows have ties: the first index must win.
      std::vector<float> vals(static_cast<size_t>(v.outer * v.k * v.inner));
      const auto r = test::random_input({static_cast<int64_t>(vals.size())}, 51, -2.0, 2.0).to_vector<float>();
      for (size_t i = 0; i < vals.size(); ++i) vals[i] = std::round(r[i] * 8.0f) / 8.0f;
      const Tensor x = from_vector(vals, {static_cast<int64_t>(vals.size())});
      const Reduced cpu = reduce_on(ReduceOp::Max, x, v.outer, v.k, v.inner, 1.0);
      const Reduced gpu = reduce_on(ReduceOp::Max, x.to(test::kCuda), v.outer, v.k, v.inner, 1.0);
      CHECK(gpu.out.to_vector<float>() == cpu.out.to_vector<float>());
      CHECK(gpu.idx.to_vector<int64_t>() == cpu.idx.to_vector<int64_t>());
    }
    // NaN in a row: the max is NaN and the index is the first NaN's, as on the CPU.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> vals(2 * 40, 1.0f);
    vals[7] = nan;
    vals[20] = nan;
    vals[40 + 3] = 5.0f;
    for (int64_t inner : {int64_t{1}, int64_t{2}}) {
      const int64_t k = 40 / inner;
      const Tensor x = from_vector(vals, {80});
      const Reduced cpu = reduce_on(ReduceOp::Max, x, 2, k, inner, 1.0);
      const Reduced gpu = reduce_on(ReduceOp::Max, x.to(test::kCuda), 2, k, inner, 1.0);
      CHECK(gpu.idx.to_vector<int64_t>() == cpu.idx.to_vector<int64_t>());
      CHECK(std::isnan(gpu.out.to_vector<float>()[0]));
    }
  }
}

TEST_CASE("cuda max backward scatters the gradient to the argmax positions", "[cuda][reduce]") {
  if (!test::cuda_or_warn()) return;
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    INFO(grid.str());
    for (const View& v : {View{31, 33, 1}, View{4, 31, 33}}) {
      const Tensor x = test::random_input({v.outer * v.k * v.inner}, 52);
      const Reduced cpu = reduce_on(ReduceOp::Max, x, v.outer, v.k, v.inner, 1.0);
      const Tensor gy = test::random_input({v.outer, v.inner}, 53);
      Tensor gx = zeros({v.outer * v.k * v.inner});
      kernels::reduce_max_backward(gy, cpu.idx, v.outer, v.k, v.inner, gx);
      Tensor gxd = zeros({v.outer * v.k * v.inner}, test::kOnCuda);
      kernels::reduce_max_backward(gy.to(test::kCuda), cpu.idx.to(test::kCuda), v.outer, v.k, v.inner, gxd);
      CHECK(gxd.to_vector<float>() == gx.to_vector<float>());
    }
  }
}

TEST_CASE("cuda softmax and log-softmax forward and backward match the CPU", "[cuda][softmax]") {
  if (!test::cuda_or_warn()) return;
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);  // cap 2: each block loops over several rows
    INFO(grid.str());
    for (bool log : {false, true}) {
      const std::vector<std::pair<int64_t, int64_t>> shapes{{1, 1}, {31, 33}, {33, 31}, {3, 1000}, {2, 5000}};
      for (const auto& [rows, n] : shapes) {
        INFO((log ? "log_softmax" : "softmax") << " [" << rows << ", " << n << "]");
        const Tensor x = test::random_input({rows, n}, 60, -4.0, 4.0);
        Tensor y = empty({rows, n}), yd = empty({rows, n}, test::kOnCuda);
        kernels::softmax_forward(x, y, log);
        kernels::softmax_forward(x.to(test::kCuda), yd, log);
        std::string why;
        const bool close = test::allclose(yd, y, 1e-5, 1e-6, &why);
        INFO(why);
        CHECK(close);
        const Tensor gy = test::random_input({rows, n}, 61);
        Tensor gx = empty({rows, n}), gxd = empty({rows, n}, test::kOnCuda);
        kernels::softmax_backward(y, gy, gx, log);
        kernels::softmax_backward(y.to(test::kCuda), gy.to(test::kCuda), gxd, log);
        const bool grad_close = test::allclose(gxd, gx, 1e-5, 1e-6, &why);
        INFO(why);
        CHECK(grad_close);
      }
    }
  }
}
