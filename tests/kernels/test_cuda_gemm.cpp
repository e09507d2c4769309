/// @file tests/kernels/test_cuda_gemm.cpp @brief CUDA GEMM (cuBLAS: the emulated cuBLAS in the emulator, the real one on a GPU; and the tiled kernel, also with grids capped so that blocks loop over the batch) against OpenBLAS: transposes, leading dims, batches, broadcast, alpha/beta.
//
// Tolerance: relative 1e-5 plus absolute 1e-5. Inputs are U[-1, 1) and k <= 100, so each output is a
// sum of <= 100 products of magnitude <= 1; f32 accumulation in different orders (blocked/FMA vs
// OpenBLAS) differs by a few k * 2^-24 ~ 6e-6 in the worst case, typically far less.
#include <catch2/catch.hpp>

#include "kernels/matmul.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {

/// Stored operand for op(X) of shape [rows, cols] (optionally batched): X itself, or X^T stored and
/// passed with the trans flag (a transposed view of a contiguous tensor, as autograd passes them).
Tensor operand(int64_t batch, int64_t rows, int64_t cols, bool trans, uint64_t seed) {
  const Shape stored = trans ? Shape{cols, rows} : Shape{rows, cols};
  Shape shape = stored;
  if (batch > 0) shape.insert(shape.begin(), batch);
  return test::random_input(shape, seed);
}

using GemmFn = void (*)(const Tensor&, bool, const Tensor&, bool, Tensor&, double, double);

void check_gemm(int64_t batch, int64_t m, int64_t n, int64_t k, bool ta, bool tb, double alpha, double beta,
                bool broadcast_b, GemmFn on_cuda = nullptr) {
  INFO("batch " << batch << " m " << m << " n " << n << " k " << k << " ta " << ta << " tb " << tb << " alpha "
                << alpha << " beta " << beta << (broadcast_b ? " (B broadcast)" : ""));
  const Tensor a = operand(batch, m, k, ta, 1);
  const Tensor b = operand(broadcast_b ? 0 : batch, k, n, tb, 2);
  const Shape cshape = batch > 0 ? Shape{batch, m, n} : Shape{m, n};
  const Tensor c0 = test::random_input(cshape, 3);
  Tensor ch = c0.clone();
  kernels::gemm(a, ta, b, tb, ch, alpha, beta);
  Tensor cd = c0.to(test::kCuda);
  if (beta == 0.0) cd.fill_(std::numeric_limits<double>::quiet_NaN());  // beta = 0 must not read C
  const Tensor ad = a.to(test::kCuda), bd = b.to(test::kCuda);
  if (on_cuda) {
    const Tensor b3 = broadcast_b && batch > 0 ? bd.unsqueeze(0).expand({batch, bd.size(0), bd.size(1)}) : bd;
    on_cuda(ad, ta, b3, tb, cd, alpha, beta);
  } else {
    kernels::gemm(ad, ta, bd, tb, cd, alpha, beta);
  }
  std::string why;
  const bool close = test::allclose(cd, ch, 1e-5, 1e-5, &why);
  INFO(why);
  CHECK(close);
}

}  // namespace

TEST_CASE("cuda gemm: all transpose combinations, edge sizes, alpha and beta", "[cuda][gemm]") {
  if (!test::cuda_or_warn()) return;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_gemm(0, 1, 1, 1, ta, tb, 1.0, 0.0, false);
      check_gemm(0, 33, 31, 65, ta, tb, 1.0, 0.0, false);   // partial tiles in every direction
      check_gemm(0, 70, 65, 17, ta, tb, -0.5, 1.0, false);  // beta = 1 accumulates into C
    }
}

TEST_CASE("cuda gemm: batched, broadcast batch operand, leading dimension > columns", "[cuda][gemm]") {
  if (!test::cuda_or_warn()) return;
  check_gemm(3, 31, 33, 20, false, true, 1.0, 0.0, false);
  check_gemm(3, 33, 31, 20, true, false, 2.0, 1.0, true);  // B shared by every batch (batch stride 0)
  // A column slice: leading dimension 40 > 33 columns.
  const Tensor wide = test::random_input({31, 40}, 4);
  const Tensor a = wide.slice(1, 2, 35), b = test::random_input({33, 29}, 5);
  Tensor ch = empty({31, 29}), cd = empty({31, 29}, test::kOnCuda);
  kernels::gemm(a, false, b, false, ch, 1.0, 0.0);
  kernels::gemm(wide.to(test::kCuda).slice(1, 2, 35), false, b.to(test::kCuda), false, cd, 1.0, 0.0);
  CHECK(test::allclose(cd, ch, 1e-5, 1e-5));

  // Both operands column slices (leading dimension = columns + 7), every transpose combination: each
  // operand's leading dimension must be its row stride, not its column count.
  const int64_t m = 31, n = 29, k = 33;
  auto narrow = [](int64_t rows, int64_t cols, uint64_t seed, Device d) {
    return test::random_input({rows, cols + 7}, seed).to(d).slice(1, 3, 3 + cols);
  };
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      INFO("ta " << ta << " tb " << tb);
      auto product = [&](Device d) {
        Tensor c = zeros({m, n}, TensorOptions{DType::f32, d});
        kernels::gemm(narrow(ta ? k : m, ta ? m : k, 6, d), ta, narrow(tb ? n : k, tb ? k : n, 7, d), tb, c, 1.0, 0.0);
        return c;
      };
      CHECK(test::allclose(product(test::kCuda), product(Device::cpu()), 1e-5, 1e-5));
    }
}

TEST_CASE("cuda tiled SGEMM (the hand-written kernel, also on a GPU next to cuBLAS) matches OpenBLAS", "[cuda][gemm]") {
  if (!test::cuda_or_warn()) return;
  const GemmFn tiled = kernels::table_for<kernels::CudaBackendInfo>(DeviceType::CUDA).tiled_gemm;
  REQUIRE(tiled != nullptr);
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);  // cap 2: the blocks of batch slice 0 also compute batch 2
    INFO(grid.str());
    // beta = 0 as well as 1: with beta = 1 a stray write of alpha * 0 + 1 * C leaves C as it was.
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (double beta : {0.0, 1.0}) check_gemm(3, 65, 33, 31, ta, tb, 1.0, beta, tb, tiled);
  }
}
