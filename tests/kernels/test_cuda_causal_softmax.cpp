/// @file tests/kernels/test_cuda_causal_softmax.cpp @brief The fused causal softmax kernels on CUDA against the CPU backend: rows longer than a block, T not a multiple of the warp size, masked entries exactly 0.
//
// Tolerances: as the plain softmax (test_cuda_reduce_softmax.cpp), both backends sum in double; the
// GPU's expf vs the CPU's exp in double differ by a few float ulps: relative 1e-5 plus absolute 1e-6
// (the backward's p * (dp - sum) cancels when dp is near the row's weighted mean).
#include <catch2/catch.hpp>

#include "kernels/softmax.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {

/// Number of entries of the flattened [rows, T] tensor in masked positions (j > i) that are not 0.
int64_t masked_nonzeros(const Tensor& t) {
  const auto v = t.to_vector<float>();
  const int64_t n = t.size(-1), rows = t.numel() / n;
  int64_t bad = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = r % n + 1; j < n; ++j) bad += v[static_cast<size_t>(r * n + j)] != 0.0f;
  return bad;
}

}  // namespace

TEST_CASE("cuda causal softmax forward and backward match the CPU; masked entries exactly 0", "[cuda][softmax]") {
  if (!test::cuda_or_warn()) return;
  // [matrices, T, T]: T = 300 > 256 threads (every thread loops over a row), 33 and 31 around a
  // warp, 1 (a lone unmasked key), 64 (a multiple of the warp, the block is 64 wide).
  const std::vector<std::pair<int64_t, int64_t>> shapes{{1, 300}, {3, 33}, {2, 31}, {4, 1}, {1, 64}};
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);  // cap 2: each block loops over many rows of several matrices
    INFO(grid.str());
    for (const auto& [m, t] : shapes) {
      INFO("[" << m << ", " << t << ", " << t << "]");
      const double scale = 0.35;
      // Masked entries hold NaN: the kernels must never read them.
      std::vector<float> vals = test::random_input({m, t, t}, 70, -6.0, 6.0).to_vector<float>();
      for (int64_t r = 0; r < m * t; ++r)
        for (int64_t j = r % t + 1; j < t; ++j) vals[static_cast<size_t>(r * t + j)] = std::nanf("");
      const Tensor x = from_vector(vals, {m, t, t});
      Tensor y = empty({m, t, t}), yd = empty({m, t, t}, test::kOnCuda);
      kernels::causal_softmax_forward(x, y, scale);
      kernels::causal_softmax_forward(x.to(test::kCuda), yd, scale);
      std::string why;
      const bool close = test::allclose(yd, y, 1e-5, 1e-6, &why);
      INFO(why);
      CHECK(close);
      CHECK(masked_nonzeros(yd) == 0);
      CHECK(masked_nonzeros(y) == 0);
      std::vector<float> gv = test::random_input({m, t, t}, 71).to_vector<float>();
      std::vector<float> yv = y.to_vector<float>();
      for (int64_t r = 0; r < m * t; ++r)  // masked y and gy are NaN too: never read either
        for (int64_t j = r % t + 1; j < t; ++j) gv[static_cast<size_t>(r * t + j)] = yv[static_cast<size_t>(r * t + j)] =
            std::nanf("");
      const Tensor gy = from_vector(gv, {m, t, t}), yn = from_vector(yv, {m, t, t});
      Tensor gx = empty({m, t, t}), gxd = empty({m, t, t}, test::kOnCuda);
      kernels::causal_softmax_backward(yn, gy, gx, scale);
      kernels::causal_softmax_backward(yn.to(test::kCuda), gy.to(test::kCuda), gxd, scale);
      const bool grad_close = test::allclose(gxd, gx, 1e-5, 1e-6, &why);
      INFO(why);
      CHECK(grad_close);
      CHECK(masked_nonzeros(gxd) == 0);
      CHECK(masked_nonzeros(gx) == 0);
    }
  }
}

TEST_CASE("cuda causal softmax rejects f64 and bad layouts naming the operands", "[cuda][softmax]") {
  if (!test::cuda_or_warn()) return;
  Tensor x64 = empty({2, 3, 3}, TensorOptions{DType::f64, test::kCuda}), y64 = empty_like(x64);
  CHECK_THROWS_WITH(kernels::causal_softmax_forward(x64, y64, 1.0), Catch::Contains("f32 only") && Catch::Contains("f64"));
  Tensor x = zeros({2, 3, 4}, test::kOnCuda), y = empty_like(x);
  CHECK_THROWS_WITH(kernels::causal_softmax_forward(x, y, 1.0), Catch::Contains("[..., T, T]") && Catch::Contains("[2, 3, 4]"));
  Tensor sq = zeros({2, 3, 3}, test::kOnCuda), ycpu = empty({2, 3, 3});
  CHECK_THROWS_WITH(kernels::causal_softmax_forward(sq, ycpu, 1.0), Catch::Contains("one device"));
}
